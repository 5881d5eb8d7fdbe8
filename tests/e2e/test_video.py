"""The short-video pipeline on synthetic clips with the real ffmpeg: formats, frames, pixels, loudness, errors.

Outputs are rendered at 180×320 / 320×180 with ``preset: ultrafast`` so the
whole module stays within a few seconds per render on two cores.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from clinical_core.domain.errors import InvalidInput
from content.adapters import ffmpeg
from content.domain.filtergraph import RenderJob, build_render
from content.domain.recipe import RecipeError
from content.services import video
from tests.support.media import (
    audio_samples,
    ffmpeg_children,
    frame_luma,
    frame_rgb,
    integrated_loudness,
    make_clips,
    pixel,
)

pytestmark = pytest.mark.slow

SRT = """1
00:00:00,100 --> 00:00:00,900
高血压患者要按时服药，不要自行停药

2
00:00:01,200 --> 00:00:01,900
谢谢观看
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture
def studio(tmp_path: Path, clips: dict[str, Path]) -> Path:
    """A recipe folder: the clips under raw/, an SRT, output goes to out/."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, path in clips.items():
        (raw / name).symlink_to(path)
    (tmp_path / "ep.srt").write_text(SRT, encoding="utf-8")
    return tmp_path


def write(folder: Path, text: str, name: str = "ep.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


FULL = """
title: 高血压的三个误区
intro: raw/rotated.mp4
clips:
  - source: raw/ramp.mp4
    start: 1.0
    end: 2.0
  - raw/noaudio.mp4
subtitles: ep.srt
logo: {image: raw/logo.png, position: top-right}
cover: {at: 2.5, title: 高血压的三个误区}
output:
  path: out/ep.mp4
  formats: [{name: vertical, size: 180x320}]
  preset: ultrafast
  loudness: -16
"""


def test_full_recipe_format_frames_pixels_and_loudness(studio: Path) -> None:
    (result,) = video.render_recipe(write(studio, FULL))
    out = studio / "out" / "ep.mp4"
    assert result.path == out and result.cover == studio / "out" / "ep.cover.jpg" and result.cover.stat().st_size > 0
    assert leftovers(studio / "out") == ["ep.cover.jpg", "ep.mp4"]  # no temporary files left

    info = video.probe_file(out, count_frames=True)
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height, info.video.fps, info.video.sar) == (180, 320, 30.0, (1, 1))
    assert (info.video.codec, info.video.pix_fmt, info.audio.codec) == ("h264", "yuv420p", "aac")
    assert (info.audio.sample_rate, info.audio.channels) == (48000, 2)
    assert info.frames == 60 + 30 + 60  # intro 2 s + cut 1 s + silent clip 2 s, at 30 fps
    assert info.duration == pytest.approx(5.0, abs=0.05)

    # Cut points to the frame: the ramp's frame N has luma 16+2N; the cut starts at its frame 30 (1.0 s).
    def centre_luma(index: int) -> int:
        return frame_luma(out, index, 180, 320)[160 * 180 + 90]

    assert abs(centre_luma(60) - (16 + 2 * 30)) <= 1
    assert abs(centre_luma(89) - (16 + 2 * 59)) <= 1
    assert abs(centre_luma(75) - (16 + 2 * 45)) <= 1

    # The rotated intro fills the portrait frame (no bands) with its halves one above the other.
    intro = frame_rgb(out, 10, 180, 320)
    top, bottom = pixel(intro, 180, 90, 40), pixel(intro, 180, 90, 280)
    assert {max(range(3), key=lambda c: top[c]), max(range(3), key=lambda c: bottom[c])} == {0, 2}  # red and blue
    assert all(max(pixel(intro, 180, x, y)) > 100 for x, y in ((2, 2), (177, 317), (2, 317), (177, 2)))

    # Body: the 16:9 ramp is fitted to the width and padded with black bands above and below.
    body = frame_rgb(out, 70, 180, 320)
    assert max(pixel(body, 180, 20, 60)) < 20 and max(pixel(body, 180, 20, 250)) < 30  # bands
    assert min(pixel(body, 180, 90, 160)) > 40  # picture
    # Logo (40x20 red) scaled to 16 % of the width (28x14), 3 % margin (5 px), top right.
    r, g, b = pixel(body, 180, 180 - 5 - 14, 5 + 7)
    assert r > 180 and g < 70 and b < 70

    # Subtitles: white text inside the frame's lower band while a cue is on screen (body time 0.1–0.9 s).
    def bright_in_lower_band(index: int) -> int:
        frame = frame_rgb(out, index, 180, 320)
        return sum(1 for y in range(215, 320) for x in range(180) if min(pixel(frame, 180, x, y)) > 200)

    assert bright_in_lower_band(60 + 15) > 20
    assert bright_in_lower_band(60 + 30 + 5) == 0  # 1.0–1.2 s: between the cues

    # Loudness: normalised to the target.
    assert integrated_loudness(out) == pytest.approx(-16, abs=1.5)


def test_phone_like_inputs_each_normalised(studio: Path) -> None:
    recipe = """
clips: [raw/odd.mkv, raw/vfr.mp4, raw/stereo.mp4]
output:
  path: out/mix.mp4
  formats: [{name: horizontal, size: 320x180}]
  preset: ultrafast
  loudness: null
"""
    (result,) = video.render_recipe(write(studio, recipe))
    info = video.probe_file(result.path, count_frames=True)
    assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
    assert info.frames == 60 + 60 + 120  # VFR input resampled to constant 30 fps
    assert info.audio is not None and info.audio.channels == 2
    # The odd-sized portrait clip sits in the middle with bands at the sides.
    frame = frame_rgb(result.path, 30, 320, 180)
    assert max(pixel(frame, 320, 5, 90)) < 20 and max(pixel(frame, 320, 314, 90)) < 20
    assert max(pixel(frame, 320, 160, 90)) > 40


def test_a_plain_source_renders_what_the_full_chain_renders(studio: Path) -> None:
    """The fast path (no fps, resampler, setsar, format: the source is already 30 fps CFR, 48 kHz stereo) against the full
    chain on the same cut (ending between two frames): the same frames to the frame, duration, rate, sample rate and channels."""
    recipe = """
clips: [{source: raw/plain.mp4, start: 1.0, end: 3.01}]
output: {path: out/fast.mp4, formats: [{name: horizontal, size: 320x180}], preset: ultrafast, loudness: null}
"""
    (job,) = video.plan(write(studio, recipe))
    render = RenderJob(job.segments, job.fmt, "", preset="ultrafast", crf=20, loudness=None)
    graph = " ".join(build_render(render))
    assert "fps=" not in graph and "aresample" not in graph and "format=" not in graph  # the fast path
    (fast,) = video.render_recipe(studio / "ep.yaml")
    full = studio / "out" / "full.mp4"
    ffmpeg.run(build_render(RenderJob(job.segments, job.fmt, str(full), preset="ultrafast", crf=20, loudness=None,
                                      skip_noops=False)))

    def facts(path: Path) -> tuple[object, ...]:
        info = video.probe_file(path, count_frames=True)
        assert info.video is not None and info.audio is not None
        centre = [frame_luma(path, i, 320, 180)[90 * 320 + 160] for i in (0, 1, 30, 59)]
        return (info.frames, round(info.duration or 0, 2), info.video.fps, (info.video.width, info.video.height),
                info.video.pix_fmt, info.audio.sample_rate, info.audio.channels, audio_samples(path), centre)

    got = facts(fast.path)
    assert got == facts(full)
    # 60.3 frames: 60; the sound lasts the cut's 2.01 s exactly (2.01 * 48000 samples)
    assert got[:-1] == (60, 2.01, 30.0, (320, 180), "yuv420p", 48000, 2, 96_480)
    # Source frames 30..89 (cut at 1.0 s and 3.0 s): frame N has luma 16 + 2N, neighbours differ by 2.
    assert all(abs(c - (16 + 2 * n)) <= 1 for c, n in zip(got[-1], (30, 31, 60, 89), strict=True)), got[-1]


def test_two_formats_from_one_recipe_and_a_pure_cut(studio: Path) -> None:
    both = """
clips: [{source: raw/stereo.mp4, end: 1.5}]
output: {path: out/two.mp4, formats: [{name: vertical, size: 180x320}, {name: horizontal, size: 320x180}], preset: ultrafast}
"""
    vertical, horizontal = video.render_recipe(write(studio, both))
    assert vertical.path.name == "two.9x16.mp4" and horizontal.path.name == "two.16x9.mp4"
    assert video.probe_file(horizontal.path).video.display_size == (320, 180)  # type: ignore[union-attr]

    cut = "clips: [{source: raw/stereo.mp4, start: 1, end: 3}]\noutput: {path: out/cut.mp4, formats: copy}\n"
    (result,) = video.render_recipe(write(studio, cut, "cut.yaml"))
    info = video.probe_file(result.path)
    # Stream copy: the source's own size and codec, nothing scaled; starts on a keyframe at or before 1 s.
    assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
    assert 1.9 <= (info.duration or 0) <= 2.6


@pytest.mark.parametrize(
    ("recipe", "words", "line"),
    [
        ("clips: [raw/corrupt.mp4]\noutput: {path: out/x.mp4, preset: ultrafast}\n", "无法使用", 1),
        ("clips:\n  - source: raw/ramp.mp4\n    end: 9\noutput: {path: out/x.mp4}\n", "超出素材 raw/ramp.mp4 的时长 3.00 秒", 2),
        ("clips:\n  - raw/missing.mp4\noutput: {path: out/x.mp4}\n", "素材文件不存在", 2),
        ("clips: [raw/ramp.mp4]\nsubtitles: ep.srt\nfont: /nonexistent/font.ttc\noutput: {path: out/x.mp4}\n",
         "字体文件不存在", 3),
    ],
)
def test_bad_input_gives_one_clear_error_and_writes_nothing(studio: Path, recipe: str, words: str, line: int) -> None:
    with pytest.raises(RecipeError) as caught:
        video.render_recipe(write(studio, recipe))
    assert caught.value.line == line and words in str(caught.value)
    assert str(caught.value).startswith(f"配方 ep.yaml 第 {line} 行")
    assert leftovers(studio / "out") == []


def test_malformed_srt_names_the_subtitle_file_and_line(studio: Path) -> None:
    (studio / "ep.srt").write_text("1\n00:00:00,100 --> 00:00:00,900\n好\n\n2\n00:00:01.200 -> 00:00:01,900\n坏\n",
                                   encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        video.render_recipe(write(studio, "clips: [raw/ramp.mp4]\nsubtitles: ep.srt\noutput: out/x.mp4\n"))
    assert str(caught.value).startswith("字幕文件 ep.srt 第 6 行：时间轴格式")
    assert leftovers(studio / "out") == []


SLOW = """
clips: [raw/stereo.mp4, raw/stereo.mp4, raw/stereo.mp4]
output: {path: out/slow.mp4, formats: vertical, preset: veryslow, loudness: null}
"""


def test_timeout_stops_ffmpeg_and_leaves_nothing(studio: Path) -> None:
    with pytest.raises(ffmpeg.FfmpegCancelled) as caught:
        video.render_recipe(write(studio, SLOW), timeout=1)
    assert "超过 1 秒" in str(caught.value)
    assert ffmpeg_children() == [] and leftovers(studio / "out") == []


def test_cancel_and_interrupt_stop_ffmpeg_and_leave_nothing(studio: Path) -> None:
    cancel = threading.Event()
    with pytest.raises(ffmpeg.FfmpegCancelled):
        video.render_recipe(write(studio, SLOW), cancel=cancel, on_progress=lambda *_: cancel.set())
    assert ffmpeg_children() == [] and leftovers(studio / "out") == []

    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.render_recipe(write(studio, SLOW), on_progress=interrupt)
    assert ffmpeg_children() == [] and leftovers(studio / "out") == []


def test_killed_ffmpeg_is_an_error_and_reaped(studio: Path, clips: dict[str, Path]) -> None:
    target = studio / "out" / "k.mp4"
    target.parent.mkdir()
    with pytest.raises(ffmpeg.FfmpegFailed):
        ffmpeg.run(["-f", "lavfi", "-i", "testsrc2=s=1280x720:d=60", "-c:v", "libx264", "-preset", "veryslow",
                    "-y", str(target)], on_start=lambda pid: os.kill(pid, signal.SIGKILL))
    assert ffmpeg_children() == []


def test_cover_from_an_image_with_a_title(studio: Path, clips: dict[str, Path]) -> None:
    from content.domain.recipe import DEFAULT_FONT, OutputFormat

    out = studio / "cover.jpg"
    video.make_cover(clips["logo.png"], out, OutputFormat("vertical", 180, 320), at=None, title="名医讲堂：高血压",
                     font=Path(DEFAULT_FONT))
    info = video.probe_file(out)
    assert info.video is not None and info.video.display_size == (180, 320)
    frame = frame_rgb(out, 0, 180, 320)
    # Title: white text in the dark box near the top; the image (red) fitted in the middle.
    assert sum(1 for y in range(30, 80) for x in range(180) if min(pixel(frame, 180, x, y)) > 200) > 20
    r, g, b = pixel(frame, 180, 90, 160)
    assert r > 180 and g < 80


def test_title_card_is_drawn_by_moviepy_and_joined_by_the_graph(studio: Path) -> None:
    recipe = """
title_card: {text: 名医讲堂：高血压, duration: 1.0}
clips: [{source: raw/ramp.mp4, end: 1}]
output: {path: out/tc.mp4, formats: [{name: vertical, size: 180x320}], preset: ultrafast, loudness: null}
"""
    (result,) = video.render_recipe(write(studio, recipe))
    assert video.probe_file(result.path, count_frames=True).frames == 30 + 30
    card = frame_rgb(result.path, 25, 180, 320)
    r, g, b = pixel(card, 180, 5, 5)
    assert b > 90 and r < 50  # the card's dark blue background fills the frame
    assert sum(1 for y in range(130, 190) for x in range(180) if min(pixel(card, 180, x, y)) > 200) > 30  # white text
    assert abs(frame_luma(result.path, 30, 180, 320)[160 * 180 + 90] - 16) <= 1  # then the ramp from its frame 0
    assert ffmpeg_children() == [] and leftovers(studio / "out") == ["tc.mp4"]


def test_bundled_ffmpeg_is_found_without_starting_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """imageio-ffmpeg's own lookup runs ``ffmpeg -version`` (a process start per render); ours reads the path."""
    import subprocess

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg_exe() started a process")

    monkeypatch.delenv("OPSCTL_FFMPEG", raising=False)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "check_call", no_process)
    import imageio_ffmpeg._utils

    imageio_ffmpeg._utils._get_ffmpeg_exe.cache_clear()  # its lookup is cached per process too
    ffmpeg.ffmpeg_exe.cache_clear()
    try:
        exe = Path(ffmpeg.ffmpeg_exe())
        assert exe.is_file() and os.access(exe, os.X_OK) and exe.parent.name == "binaries"
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/opt/ffmpeg/bin/ffmpeg")  # imageio-ffmpeg's own override
        ffmpeg.ffmpeg_exe.cache_clear()
        assert ffmpeg.ffmpeg_exe() == "/opt/ffmpeg/bin/ffmpeg"
    finally:
        ffmpeg.ffmpeg_exe.cache_clear()
