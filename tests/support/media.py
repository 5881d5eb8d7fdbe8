"""Synthetic clips from ffmpeg's test sources, and ways to look inside a rendered file.

Clips are a few seconds at tiny sizes so the video tests stay quick on two shared cores.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psutil

from content.adapters.ffmpeg import ffmpeg_exe


def ff(*args: str) -> str:
    """Run ffmpeg; return stderr; fail loudly."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args], capture_output=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(result.stderr.decode("utf-8", "replace")[-2000:])
    return result.stderr.decode("utf-8", "replace")


def make_clips(folder: Path) -> dict[str, Path]:
    """Phone-like inputs: landscape with a luma ramp, odd portrait, VFR, rotated, mono, silent, stereo, and a
    plain clip already in the 320x180 output's form."""
    folder.mkdir(parents=True, exist_ok=True)
    p = {name: folder / name for name in ("ramp.mp4", "odd.mkv", "vfr.mp4", "rotated.mp4", "noaudio.mp4",
                                          "stereo.mp4", "plain.mp4", "logo.png", "corrupt.mp4")}
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15"]
    # Luma of frame N is 16 + 2N (30 fps, 3 s): a frame can be identified by its grey level. Mono audio.
    ff("-f", "lavfi", "-i", "nullsrc=s=160x90:r=30:d=3,geq=lum='16+2*N':cb=128:cr=128",
       "-f", "lavfi", "-i", "sine=f=440:d=3:r=44100", *x264, "-crf", "10", "-c:a", "aac", "-ac", "1", str(p["ramp.mp4"]))
    # Odd portrait size (99x175), 4:4:4 lossless in Matroska, mono PCM.
    ff("-f", "lavfi", "-i", "testsrc2=s=99x175:r=30:d=2", "-f", "lavfi", "-i", "sine=f=300:d=2",
       "-c:v", "ffv1", "-pix_fmt", "yuv444p", "-c:a", "pcm_s16le", str(p["odd.mkv"]))
    # Variable frame rate: every frame for 20 frames, then one in three.
    ff("-f", "lavfi", "-i", "testsrc2=s=128x72:r=30:d=2", "-f", "lavfi", "-i", "sine=f=500:d=2",
       "-vf", "select='lt(n,20)+not(mod(n,3))'", "-fps_mode", "vfr", *x264, "-c:a", "aac", str(p["vfr.mp4"]))
    # Stored landscape 160x90 (left red, right blue) with a display matrix: shown as portrait 90x160.
    stored = folder / "stored.mp4"
    ff("-f", "lavfi", "-i", "color=red:s=80x90:r=30:d=2,pad=160:90:80:0:blue", "-f", "lavfi", "-i",
       "sine=f=600:d=2", *x264, "-c:a", "aac", str(stored))
    ff("-display_rotation", "90", "-i", str(stored), "-c", "copy", str(p["rotated.mp4"]))
    ff("-f", "lavfi", "-i", "color=green:s=160x90:r=30:d=2", *x264, str(p["noaudio.mp4"]))
    ff("-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=4", "-f", "lavfi", "-i",
       "sine=f=440:d=4,volume=-12dB,aformat=channel_layouts=stereo", *x264, "-c:a", "aac", str(p["stereo.mp4"]))
    # Already in the output's form (320x180, constant 30 fps, yuv420p, 48 kHz stereo): the builder's fast path.
    # Luma of frame N is 16 + 2N, as in the ramp.
    ff("-f", "lavfi", "-i", "nullsrc=s=320x180:r=30:d=4,geq=lum='16+2*N':cb=128:cr=128,format=yuv420p",
       "-f", "lavfi", "-i", "sine=f=440:d=4:r=48000,aformat=channel_layouts=stereo", *x264, "-crf", "10",
       "-c:a", "aac", str(p["plain.mp4"]))
    ff("-f", "lavfi", "-i", "color=red:s=40x20", "-frames:v", "1", str(p["logo.png"]))
    p["corrupt.mp4"].write_bytes(p["stereo.mp4"].read_bytes()[:3000])  # truncated: no index
    return p


def frame_rgb(video: Path, index: int, width: int, height: int) -> bytes:
    """Frame ``index`` (0-based, by decode order at the file's frame rate) as raw RGB24."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-vf", f"select=eq(n\\,{index})",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], capture_output=True,
                         timeout=60, check=True).stdout
    assert len(out) == width * height * 3, f"frame {index} not found"
    return out


def frame_luma(video: Path, index: int, width: int, height: int) -> bytes:
    """The Y plane of frame ``index`` exactly as coded (no colour conversion)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-vf", f"select=eq(n\\,{index})",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"], capture_output=True,
                         timeout=60, check=True).stdout
    assert len(out) >= width * height, f"frame {index} not found"
    return out[: width * height]


def pixel(rgb: bytes, width: int, x: int, y: int) -> tuple[int, int, int]:
    i = (y * width + x) * 3
    return rgb[i], rgb[i + 1], rgb[i + 2]


def integrated_loudness(video: Path) -> float:
    """EBU R128 integrated loudness (LUFS) as ffmpeg's ebur128 filter measures it."""
    stderr = ff("-i", str(video), "-vn", "-af", "ebur128=framelog=quiet", "-f", "null", "-")
    summary = stderr[stderr.rindex("Summary:"):]
    return float(re.search(r"I:\s*(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]


def audio_samples(video: Path) -> int:
    """How many audio samples (per channel) the file decodes to."""
    stderr = ff("-i", str(video), "-map", "0:a:0", "-af", "astats=metadata=0:measure_perchannel=none", "-f", "null", "-")
    return int(re.findall(r"Number of samples: (\d+)", stderr)[-1])


def ffmpeg_children() -> list[psutil.Process]:
    """ffmpeg processes this test process started that still exist (zombies included)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name().startswith("ffmpeg"):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found
