"""Reading ``ffmpeg -i``'s report (imageio-ffmpeg ships no ffprobe) and ``-progress`` blocks."""

from __future__ import annotations

import pytest

from content.domain.media import ProbeFailed, parse_frame_count, parse_probe, parse_progress_block

PHONE = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'IMG_0001.MOV':
  Metadata:
    major_brand     : qt
  Duration: 00:00:12.48, start: 0.000000, bitrate: 15873 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 15701 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      Display Matrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 96 kb/s (default)
At least one output file must be specified"""


def test_phone_clip() -> None:
    info = parse_probe(PHONE)
    assert info.duration == pytest.approx(12.48) and info.bitrate_kbps == 15873
    assert info.video is not None and (info.video.width, info.video.height, info.video.fps) == (1920, 1080, 29.97)
    assert info.video.rotation == 90 and info.video.display_size == (1080, 1920)
    assert info.audio is not None and (info.audio.sample_rate, info.audio.channels) == (44100, 1)


def test_image_and_no_audio() -> None:
    text = ("Input #0, png_pipe, from 'logo.png':\n  Duration: N/A, bitrate: N/A\n"
            "  Stream #0:0: Video: png, rgba(pc, gbr/unknown/unknown), 200x80, 25 fps, 25 tbr, 25 tbn\n")
    info = parse_probe(text)
    assert info.is_image and info.audio is None and info.duration is None and info.video.display_size == (200, 80)


def test_anamorphic_sar() -> None:
    text = ("Input #0, mpegts, from 'x.ts':\n  Duration: 00:00:02.00, start: 1.4, bitrate: 100 kb/s\n"
            "  Stream #0:0[0x100]: Video: mpeg2video (Main), yuv420p(tv, top first), 720x576 [SAR 16:15 DAR 4:3], 25 fps, 25 tbr\n"
            "  Stream #0:1[0x101](eng): Audio: mp2, 48000 Hz, 5.1(side), s16p, 384 kb/s\n")
    info = parse_probe(text)
    assert info.video.display_size == (768, 576) and info.audio.channels == 6


def test_unreadable_file() -> None:
    text = "[in#0 @ 0x1] Error opening input: Invalid data found when processing input\nError opening input file x.mp4."
    with pytest.raises(ProbeFailed) as caught:
        parse_probe(text)
    assert "x.mp4" in caught.value.reason


def test_frame_count_and_progress() -> None:
    assert parse_frame_count("frame=   10 fps=0.0\rframe=   75 fps=0.0 q=-1.0 Lsize=N/A") == 75
    block = ["frame=40", "out_time_us=1333333", "out_time=00:00:01.333333", "speed=2.5x", "progress=continue"]
    report = parse_progress_block(block)
    assert report.out_time == pytest.approx(1.333333) and report.speed == 2.5 and not report.done
    assert parse_progress_block(["out_time_us=N/A", "speed=N/A", "progress=end"]).done


def test_rate_facts_tell_a_constant_rate_from_a_variable_one() -> None:
    phone = parse_probe(PHONE)
    assert phone.video is not None and phone.audio is not None
    assert (phone.video.avg_fps, phone.video.tbr, phone.video.tbn) == (29.97, 29.97, 600)
    assert (phone.audio.layout, phone.audio.sample_fmt) == ("mono", "fltp")
    assert phone.video.constant_at(30) is False  # 29.97, not 30

    def video(rates: str) -> str:
        return ("Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':\n  Duration: 00:00:04.00, start: 0.0, bitrate: 1 kb/s\n"
                f"  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 320x180 "
                f"[SAR 1:1 DAR 16:9], 800 kb/s, {rates} (default)\n"
                "  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s\n")

    plain = parse_probe(video("30 fps, 30 tbr, 15360 tbn"))
    assert plain.video is not None and plain.video.constant_at(30) and not plain.video.constant_at(25)
    assert plain.audio is not None and (plain.audio.sample_rate, plain.audio.layout) == (48000, "stereo")
    assert parse_probe(video("30 fps, 30 tbr, 90k tbn")).video.tbn == 90000  # type: ignore[union-attr]
    for other in ("17.07 fps, 30 tbr, 15360 tbn",  # variable: the average is below the timestamps' rate
                  "30 tbr, 15360 tbn",  # no stated average
                  "30 fps, 30 tbr, 1k tbn"):  # 1 ms ticks: 33.3 ms frames cannot sit on the grid
        assert not parse_probe(video(other)).video.constant_at(30), other  # type: ignore[union-attr]
    assert parse_probe(video("30 tbr, 15360 tbn")).video.fps == 30  # type: ignore[union-attr]
    pcm = parse_probe("Input #0, matroska,webm, from 'b.mkv':\n  Duration: 00:00:02.00, start: 0.0, bitrate: 1 kb/s\n"
                      "  Stream #0:0: Audio: pcm_s16le, 48000 Hz, 2 channels, s16, 1536 kb/s\n")
    assert pcm.audio is not None and (pcm.audio.channels, pcm.audio.layout, pcm.audio.sample_fmt) == (2, "2 channels", "s16")
