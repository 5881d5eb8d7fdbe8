"""片头字卡: an animated title (fade in, slow zoom) that a filter graph cannot easily say, drawn by moviepy.

Rendered once to an intermediate file at the output's size and frame rate;
the filter graph then takes it in like any other clip. The text uses
WenQuanYi Micro Hei: moviepy on the Noto CJK .ttc picks the Japanese glyph
forms, and a CJK TextClip needs an explicit height.
"""

from __future__ import annotations

from pathlib import Path

from content.domain.subtitles import wrap


def render_title_card(text: str, output: Path, *, width: int, height: int, fps: int, duration: float,
                      font: str, preset: str = "veryfast") -> Path:
    from moviepy import ColorClip, CompositeVideoClip, TextClip, vfx

    size = round(min(width, height) * 0.08)
    lines = wrap(text, max(4, int(width * 0.8 / (size * 0.5))))
    box_height = round(size * 1.5 * len(lines)) + size
    background = ColorClip((width, height), color=(18, 60, 120), duration=duration)
    label = TextClip(font=font, text="\n".join(lines), font_size=size, color="white", method="label",
                     size=(round(width * 0.9), box_height), text_align="center", interline=round(size * 0.3),
                     duration=duration)
    label = label.with_position(("center", "center")).with_effects(
        [vfx.FadeIn(min(0.6, duration / 3)), vfx.Resize(lambda t: 0.94 + 0.03 * t / duration)]
    )
    clips = [background, label]
    card = CompositeVideoClip(clips, size=(width, height)).with_duration(duration)
    try:
        card.write_videofile(str(output), fps=fps, codec="libx264", audio=False, preset=preset, logger=None,
                             pixel_format="yuv420p")
    finally:
        card.close()
        for clip in clips:
            clip.close()
    return output
