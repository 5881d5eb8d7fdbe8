"""The pure builder: one ffmpeg command per output, read back as a graph (no I/O)."""

from __future__ import annotations

import pytest

from content.domain.filtergraph import (
    LoudnessMeasurement,
    RenderJob,
    Segment,
    build_copy_cut,
    build_cover,
    build_loudness_pass,
    build_render,
    escape_option,
    logo_box,
    parse_loudness,
)
from content.domain.media import AudioStream, MediaInfo, VideoStream
from content.domain.recipe import Logo, OutputFormat

VERTICAL = OutputFormat("vertical", 1080, 1920)
MEASURED = LoudnessMeasurement(-23.1, -4.2, 5.0, -33.5, 0.4)


def info(*, audio_channels: int | None = 2, width: int = 1920, height: int = 1080, rotation: int = 0) -> MediaInfo:
    audio = AudioStream("aac", 44100, audio_channels) if audio_channels else None
    return MediaInfo("mov,mp4", 10.0, 1000, VideoStream("h264", width, height, 29.97, (1, 1), rotation, "yuv420p"), audio)


def job(*segments: Segment, **kwargs: object) -> RenderJob:
    values: dict[str, object] = {"measured": MEASURED, "output": "/out/.x.part.mp4"}
    values.update(kwargs)
    return RenderJob(tuple(segments), VERTICAL, **values)  # type: ignore[arg-type]


def graph_of(args: list[str]) -> list[str]:
    return args[args.index("-filter_complex") + 1].split(";")


def test_one_process_one_graph_with_every_input_normalised() -> None:
    args = build_render(job(Segment("/in/intro.mp4", 0, 2, info(), "intro"),
                            Segment("/in/a.mp4", 1.5, 3, info(audio_channels=1)),
                            Segment("/in/b.mp4", 0, 4, info(audio_channels=None)),
                            Segment("/in/outro.mp4", 0, 2, info(), "outro")))
    assert args.count("-filter_complex") == 1 and args.count("-i") == 4
    assert args[args.index("/in/a.mp4") - 5:args.index("/in/a.mp4")] == ["-ss", "1.5", "-t", "3", "-i"]
    graph = graph_of(args)
    for i in range(4):
        chain = next(c for c in graph if c.startswith(f"[{i}:v:0]"))
        assert "fps=30" in chain and "scale=1080:1920:force_original_aspect_ratio=decrease" in chain
        assert "pad=1080:1920:(ow-iw)/2:(oh-ih)/2:color=black" in chain and "setsar=1" in chain
    assert "trim=end_frame=90" in graph[1]  # 3 s at 30 fps, to the frame
    mono = next(c for c in graph if c.startswith("[1:a:0]"))
    assert "pan=stereo|c0=c0|c1=c0" in mono and "aresample=48000" in mono and "atrim=end=3" in mono
    assert any(c.startswith("anullsrc=r=48000:cl=stereo,atrim=end=4[a2]") for c in graph)  # silence for no audio
    assert not any(c.startswith("[2:a") for c in graph)
    assert "[v1][a1][v2][a2]concat=n=2:v=1:a=1[bv0][ba]" in graph
    assert "[v0][a0][bv0][ba][v3][a3]concat=n=3:v=1:a=1[vout][aj]" in graph
    assert graph[-1].startswith("[aj]loudnorm=I=-16:TP=-1.5:LRA=11.0:measured_I=-23.1:measured_TP=-4.2")
    assert "linear=true" in graph[-1]
    for flag in (["-c:v", "libx264"], ["-c:a", "aac"], ["-movflags", "+faststart"], ["-map", "[vout]"]):
        assert any(args[i:i + 2] == flag for i in range(len(args)))
    assert args[-1] == "/out/.x.part.mp4"


def test_subtitles_and_logo_go_over_the_body_only() -> None:
    logo = Logo("logo.png", "top-right", 0.16, 0.03)
    args = build_render(job(Segment("/in/intro.mp4", 0, 2, info(), "intro"), Segment("/in/a.mp4", 0, 3, info()),
                            subtitles_path="/tmp/w/sub:1.ass", fonts_dir="/usr/share/fonts/wqy", logo=logo,
                            logo_path="/in/logo.png"))
    graph = graph_of(args)
    assert args[args.index("/in/logo.png") - 1] == "-i" and args.index("/in/logo.png") > args.index("/in/a.mp4")
    assert "[v1]subtitles=filename=/tmp/w/sub\\\\:1.ass:fontsdir=/usr/share/fonts/wqy[bv1]" in graph  # one clip: no concat
    assert "[2:v:0]scale=172:-2,format=rgba[logo]" in graph
    assert any(c.startswith("[bv1][logo]overlay=x=W-w-32:y=32") for c in graph)
    assert any(c.startswith("[v0][a0][bv2][a1]concat=n=2") for c in graph)


def test_loudness_off_means_no_loudnorm_and_no_measurement_needed() -> None:
    args = build_render(job(Segment("/in/a.mp4", 0, 3, info()), loudness=None, measured=None))
    assert "loudnorm" not in " ".join(args)
    # One clip, nothing to join or normalise: the chains' own outputs are mapped, no null/anull copies.
    assert args[args.index("-map"):args.index("-map") + 4] == ["-map", "[v0]", "-map", "[a0]"]
    assert "null" not in args[args.index("-filter_complex") + 1].replace("anullsrc", "")


def test_loudness_target_requires_the_first_pass() -> None:
    with pytest.raises(ValueError):
        build_render(job(Segment("/in/a.mp4", 0, 3, info()), measured=None))


def test_first_pass_decodes_audio_only() -> None:
    args = build_loudness_pass(job(Segment("/in/a.mp4", 2, 3, info()), Segment("/in/b.mp4", 0, 1, info())))
    graph = graph_of(args)
    assert not any("v:0" in c for c in graph)
    assert graph[-1] == "[aj]loudnorm=I=-16:TP=-1.5:LRA=11.0:print_format=json[aout]"
    assert args[-3:] == ["-f", "null", "-"]


def test_parse_loudness_reads_the_json_block() -> None:
    stderr = """[Parsed_loudnorm_5 @ 0x1]
{
	"input_i" : "-27.61",
	"input_tp" : "-4.47",
	"input_lra" : "18.06",
	"input_thresh" : "-39.20",
	"output_i" : "-16.58",
	"target_offset" : "0.58"
}"""
    assert parse_loudness(stderr) == LoudnessMeasurement(-27.61, -4.47, 18.06, -39.2, 0.58)
    assert parse_loudness(stderr.replace('"-27.61"', '"-inf"')).integrated == -99.0


def test_pure_cut_is_a_stream_copy() -> None:
    args = build_copy_cut("/in/a.mp4", 2.5, 3.0, "/out/x.mp4")
    assert args[args.index("-c") + 1] == "copy" and "-filter_complex" not in args and "libx264" not in args
    assert args[args.index("-ss") + 1] == "2.5" and args.index("-ss") < args.index("-i")


def test_logo_box_and_escaping() -> None:
    assert logo_box(Logo("l.png", "bottom-left", 0.2, 0.05), VERTICAL, (400, 200)) == (54, 1920 - 108 - 54, 216, 108)
    assert escape_option("a'b,c") == "a\\\\\\'b\\,c"


def test_cover_draws_the_title_from_a_file() -> None:
    args = build_cover("/out/x.mp4", "/out/x.jpg", VERTICAL, at=2.0, title_file="/tmp/t.txt", font="/f/w.ttc")
    vf = args[args.index("-vf") + 1]
    assert "drawtext=fontfile=/f/w.ttc:textfile=/tmp/t.txt" in vf and args[args.index("-ss") + 1] == "2"
    assert args[args.index("-frames:v") + 1] == "1"


def test_a_source_already_in_the_output_frame_is_not_scaled_or_padded() -> None:
    def chain(video: MediaInfo) -> str:
        return graph_of(build_render(job(Segment("/in/a.mp4", 0, 3, video))))[0]

    fitting = chain(info(width=1080, height=1920))
    assert "scale=" not in fitting and "pad=" not in fitting
    assert "fps=30" in fitting  # 29.97 fps: still converted to the output rate
    for other in (info(), info(width=1080, height=1920, rotation=90), info(width=1078, height=1920)):
        assert "scale=1080:1920:force_original_aspect_ratio=decrease" in chain(other) and "pad=1080:1920" in chain(other)
    wide_pixels = MediaInfo("mov,mp4", 10.0, 1000, VideoStream("h264", 1080, 1920, 30.0, (4, 3), 0, "yuv420p"), None)
    assert "pad=1080:1920" in chain(wide_pixels)  # same stored size, but not square pixels: shown wider


def plain(*, fps: float = 30.0, tbr: float = 30.0, tbn: float = 15360, pix_fmt: str = "yuv420p", size=(1080, 1920),
          rate: int = 48000, layout: str = "stereo", channels: int = 2, audio: bool = True) -> MediaInfo:
    """A clip already in the output's form (unless a keyword says otherwise), as the probe reports it."""
    video = VideoStream("h264", *size, fps or tbr, (1, 1), 0, pix_fmt, avg_fps=fps, tbr=tbr, tbn=tbn)
    sound = AudioStream("aac", rate, channels, layout, "fltp") if audio else None
    return MediaInfo("mov,mp4", 10.0, 1000, video, sound)


def single(video: MediaInfo, **kwargs: object) -> tuple[list[str], str, str]:
    """Arguments, video chain and audio chain of a one-segment render of 3 s."""
    args = build_render(job(Segment("/in/a.mp4", 1, 3, video), loudness=None, measured=None, **kwargs))
    graph = graph_of(args)
    return args, graph[0], graph[1]


def test_a_plain_source_skips_every_filter_that_would_change_nothing() -> None:
    args, v, a = single(plain())
    assert v == "[0:v:0]setpts=PTS-STARTPTS,trim=end_frame=90,setpts=PTS-STARTPTS[v0]"  # no fps, setsar, format
    assert a == "[0:a:0]asetpts=PTS-STARTPTS,apad,atrim=end=3,asetpts=PTS-STARTPTS[a0]"  # no resampler, exact length
    assert "-frames:v" not in args  # it would end the audio with the video's last frame
    # The output guarantees stay on the command line whatever the graph.
    for flag in (["-r", "30"], ["-ar", "48000"], ["-ac", "2"], ["-pix_fmt", "yuv420p"], ["-b:a", "160k"]):
        assert any(args[i:i + 2] == flag for i in range(len(args)))


def test_the_full_chain_stays_where_the_source_needs_it() -> None:
    full_video = "[0:v:0]setpts=PTS-STARTPTS,fps=30,trim=end_frame=90,setpts=PTS-STARTPTS[v0]"
    for other in (plain(fps=17.07),  # variable frame rate: the average is below the timestamps' rate
                  plain(fps=25, tbr=25, tbn=12800),  # constant, but not the output rate
                  plain(fps=29.97, tbr=29.97, tbn=30000),
                  plain(tbn=1000),  # Matroska's 1 ms ticks cannot hold a 30 fps grid
                  plain(fps=0)):  # the container states no average: the probe cannot tell
        assert single(other)[1] == full_video, other.video
    assert single(plain(pix_fmt="yuvj420p"))[1].startswith("[0:v:0]setpts=PTS-STARTPTS,format=yuv420p,trim")  # full range
    assert single(plain(size=(1920, 1080)))[1] == (
        "[0:v:0]setpts=PTS-STARTPTS,scale=1080:1920:force_original_aspect_ratio=decrease:force_divisible_by=2,"
        "pad=1080:1920:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p,trim=end_frame=90,setpts=PTS-STARTPTS[v0]")
    converted = "aresample=48000,aformat=channel_layouts=stereo,aformat=sample_fmts=fltp:sample_rates=48000"
    assert converted in single(plain(rate=44100))[2]
    assert converted in single(plain(layout="", channels=2))[2]  # "2 channels" without a layout
    assert "aresample=48000,pan=stereo|c0=c0|c1=c0" in single(plain(layout="mono", channels=1))[2]
    assert single(plain(audio=False))[2] == "anullsrc=r=48000:cl=stereo,atrim=end=3[a0]"


def test_skip_noops_off_gives_the_full_chain() -> None:
    _, v, a = single(plain(), skip_noops=False)
    assert v == "[0:v:0]setpts=PTS-STARTPTS,fps=30,setsar=1,format=yuv420p,trim=end_frame=90,setpts=PTS-STARTPTS[v0]"
    assert a.startswith("[0:a:0]asetpts=PTS-STARTPTS,aresample=48000,aformat=channel_layouts=stereo,")
    first = build_loudness_pass(job(Segment("/in/a.mp4", 0, 3, plain()), skip_noops=False))
    assert "aresample=48000" in graph_of(first)[0]
