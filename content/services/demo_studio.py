"""A demo studio (演示素材): synthetic clips, logo, subtitles and a recipe made with ffmpeg's test sources.

``make demo`` renders a short science video from it, so the pipeline runs
end to end without any real footage on the machine.
"""

from __future__ import annotations

from pathlib import Path

from content.adapters import ffmpeg

SRT = """1
00:00:00,300 --> 00:00:02,400
高血压的第一个误区：没有症状就不用吃药

2
00:00:02,600 --> 00:00:04,800
血压控制平稳后，也不要自行停药

3
00:00:05,000 --> 00:00:07,600
有疑问请在互联网医院咨询心内科医生
"""

RECIPE = """# 名医科普 · 高血压的三个误区（演示）
title: 高血压的三个误区
intro: raw/intro.mp4
clips:
  - source: raw/doctor.mp4        # 横屏口播，单声道
    start: 0.5
    end: 4.5
  - raw/phone.mp4                 # 手机竖拍，带旋转标记，无声
subtitles: subtitles.srt
logo: {image: brand/logo.png, position: top-right}
cover: {at: 3.0, title: 高血压的三个误区}
output:
  path: out/hypertension.mp4
  formats: [{name: vertical, size: 540x960}, {name: horizontal, size: 640x360}]
  preset: veryfast
  loudness: -16
"""


def _ff(*args: str) -> None:
    ffmpeg.run(["-hide_banner", "-nostdin", "-y", "-v", "error", *args], timeout=120, what="生成演示素材")


def write_demo_studio(folder: Path) -> Path:
    """Create the sources and the recipe under ``folder``; returns the recipe path."""
    raw, brand = folder / "raw", folder / "brand"
    raw.mkdir(parents=True, exist_ok=True)
    brand.mkdir(parents=True, exist_ok=True)
    x264 = ["-c:v", "libx264", "-preset", "ultrafast"]
    _ff("-f", "lavfi", "-i", "testsrc=s=540x960:r=30:d=1.5", "-f", "lavfi", "-i", "sine=f=880:d=1.5",
        *x264, "-c:a", "aac", str(raw / "intro.mp4"))
    _ff("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=5", "-f", "lavfi", "-i", "sine=f=220:d=5,volume=-20dB",
        *x264, "-c:a", "aac", "-ac", "1", str(raw / "doctor.mp4"))
    stored = raw / "phone-stored.mp4"
    _ff("-f", "lavfi", "-i", "smptebars=s=320x180:r=30:d=3", *x264, str(stored))
    _ff("-display_rotation", "90", "-i", str(stored), "-c", "copy", str(raw / "phone.mp4"))
    stored.unlink()
    _ff("-f", "lavfi", "-i", "color=c=0x1a5fb4:s=200x80,drawbox=x=10:y=10:w=60:h=60:color=white:t=fill",
        "-frames:v", "1", str(brand / "logo.png"))
    (folder / "subtitles.srt").write_text(SRT, encoding="utf-8")
    recipe = folder / "hypertension.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    return recipe
