"""The pure builder: a recipe's resolved segments in, ONE ffmpeg command out.

Every input is normalised to the output frame inside a single
``-filter_complex``: constant frame rate, scaled to fit and padded to the
frame (bands in ``pad_color``), square pixels, yuv420p; audio resampled to
48 kHz stereo (mono duplicated to both channels, a clip without sound gets
silence of its own length). Rotation needs no filter: ffmpeg applies a clip's
display matrix when it decodes (``autorotate``), and the probe reports it.
Body clips are concatenated, then subtitles (ASS at the output resolution)
and the logo go over the body only; intro, title card and outro are joined
around it; the audio is loudness-normalised in two passes (``loudnorm``
measures, then corrects linearly with the measured values). Video is x264,
audio AAC, ``+faststart`` so platforms can play before the download ends.

Nothing here touches the file system or runs a process: the service resolves
paths, probes inputs, writes the ASS file and runs what this returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from content.domain.media import MediaInfo
from content.domain.recipe import Logo, OutputFormat

SAMPLE_RATE = 48_000
TRUE_PEAK = -1.5
LOUDNESS_RANGE = 11.0


@dataclass(frozen=True)
class Segment:
    """One input of the graph: a file, where to start and how long (already checked against the file)."""

    path: str
    start: float
    duration: float
    info: MediaInfo
    role: str = "clip"  # intro | title_card | clip | outro


@dataclass(frozen=True)
class LoudnessMeasurement:
    """What the first ``loudnorm`` pass printed (input_i, input_tp, input_lra, input_thresh, target_offset)."""

    integrated: float
    true_peak: float
    lra: float
    threshold: float
    offset: float


@dataclass(frozen=True)
class RenderJob:
    segments: tuple[Segment, ...]
    frame: OutputFormat
    output: str
    fps: int = 30
    pad_color: str = "black"
    crf: int = 20
    preset: str = "medium"
    loudness: float | None = -16.0
    measured: LoudnessMeasurement | None = None
    subtitles_path: str | None = None  # an ASS file sized for ``frame``
    fonts_dir: str | None = None
    logo: Logo | None = None
    logo_path: str | None = None
    container: str = "mp4"
    skip_noops: bool = True  # leave out filters the probe shows would change nothing (False: the full chain)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


def escape_option(value: str) -> str:
    """Escape a filter option value, then the filter-graph level (two levels, as ffmpeg-filters(1) says)."""
    level1 = re.sub(r"([\\':])", r"\\\1", value)
    return re.sub(r"([\\'\[\],;])", r"\\\1", level1)


def _fmt(seconds: float) -> str:
    return f"{seconds:.6f}".rstrip("0").rstrip(".") or "0"


def frame_count(duration: float, fps: int) -> int:
    return max(1, round(duration * fps))


def fits_frame(seg: Segment, job: RenderJob) -> bool:
    """The segment's pictures are already the output frame: stored at exactly its size, square pixels,
    no rotation to apply. Scaling and padding would then only copy every frame (~5 % of a trim's CPU)."""
    v = seg.info.video
    return (v is not None and v.rotation == 0 and tuple(v.sar) == (1, 1)
            and (v.width, v.height) == (job.frame.width, job.frame.height))


def keeps_rate(seg: Segment, job: RenderJob) -> bool:
    """The segment is already at the output's constant frame rate, so ``fps`` would pass every frame through
    unchanged. Variable-rate and other-rate clips (and any clip whose probe cannot say) keep ``fps``."""
    v = seg.info.video
    return job.skip_noops and v is not None and v.constant_at(job.fps)


def plain_audio(seg: Segment, job: RenderJob) -> bool:
    """The segment's sound is already 48 kHz stereo: resampling and re-mixing would be no-ops. The sample
    format needs no filter either: ffmpeg converts to what the AAC encoder takes (fltp) at the graph's end."""
    a = seg.info.audio
    return job.skip_noops and a is not None and a.sample_rate == SAMPLE_RATE and a.layout == "stereo"


def _video_chain(index: int, seg: Segment, job: RenderJob) -> str:
    w, h = job.frame.width, job.frame.height
    fitting = fits_frame(seg, job)
    v = seg.info.video
    plain = job.skip_noops and fitting
    steps = ["setpts=PTS-STARTPTS"]
    if not keeps_rate(seg, job):
        steps.append(f"fps={job.fps}")
    if not fitting:
        steps += [f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2",
                  f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color={job.pad_color}"]
    if not plain:  # fits_frame already means square pixels
        steps.append("setsar=1")
    if not (plain and v is not None and v.pix_fmt == "yuv420p"):
        steps.append("format=yuv420p")
    # The cut to the frame stays a filter: ``-frames:v N`` on the output would also end the whole file
    # there, cutting the last audio frame short (95,232 instead of 96,480 samples on a 2.01 s cut).
    steps += [f"trim=end_frame={frame_count(seg.duration, job.fps)}", "setpts=PTS-STARTPTS"]
    return f"[{index}:v:0]{','.join(steps)}[v{index}]"


def _audio_chain(index: int, seg: Segment, job: RenderJob) -> str:
    end = _fmt(seg.duration)
    if seg.info.audio is None:
        return f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=end={end}[a{index}]"
    if plain_audio(seg, job):
        convert = ""
    else:
        layout = "pan=stereo|c0=c0|c1=c0" if seg.info.audio.channels == 1 else "aformat=channel_layouts=stereo"
        convert = f"aresample={SAMPLE_RATE},{layout},aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE},"
    return (
        f"[{index}:a:0]asetpts=PTS-STARTPTS,{convert}apad,atrim=end={end},asetpts=PTS-STARTPTS[a{index}]"
    )


def _inputs(job: RenderJob) -> list[str]:
    args: list[str] = []
    for seg in job.segments:
        if seg.start > 0:
            args += ["-ss", _fmt(seg.start)]
        args += ["-t", _fmt(seg.duration), "-i", seg.path]
    if job.logo_path:
        args += ["-i", job.logo_path]
    return args


def _join(labels: list[tuple[str, str]], out_v: str, out_a: str, chains: list[str]) -> tuple[str, str]:
    """Concatenate ``labels``; the labels of the result. One part is used as it is (no ``null`` copy)."""
    if len(labels) == 1:
        return labels[0]
    pads = "".join(v + a for v, a in labels)
    chains.append(f"{pads}concat=n={len(labels)}:v=1:a=1{out_v}{out_a}")
    return out_v, out_a


def _logo_xy(logo: Logo, frame: OutputFormat) -> tuple[str, str]:
    margin = round(frame.width * logo.margin)
    x = str(margin) if logo.position.endswith("left") else f"W-w-{margin}"
    y = str(margin) if logo.position.startswith("top") else f"H-h-{margin}"
    return x, y


def logo_box(logo: Logo, frame: OutputFormat, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where the logo lands: (x, y, width, height) in output pixels (tests sample this area)."""
    width = _even(frame.width * logo.width)
    height = _even(width * image_size[1] / image_size[0])
    margin = round(frame.width * logo.margin)
    x = margin if logo.position.endswith("left") else frame.width - width - margin
    y = margin if logo.position.startswith("top") else frame.height - height - margin
    return x, y, width, height


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _loudnorm(job: RenderJob, *, measure: bool) -> str:
    target = f"I={_fmt(job.loudness or -16)}:TP={TRUE_PEAK}:LRA={LOUDNESS_RANGE}"
    if measure:
        return f"loudnorm={target}:print_format=json"
    m = job.measured
    assert m is not None
    return (
        f"loudnorm={target}:measured_I={m.integrated}:measured_TP={m.true_peak}:measured_LRA={m.lra}"
        f":measured_thresh={m.threshold}:offset={m.offset}:linear=true:print_format=summary,"
        f"aresample={SAMPLE_RATE}"
    )


def audio_graph(job: RenderJob) -> list[str]:
    """The audio half of the graph, ending in ``[aj]`` (joined, not yet normalised)."""
    chains = [_audio_chain(i, seg, job) for i, seg in enumerate(job.segments)]
    body = [i for i, s in enumerate(job.segments) if s.role == "clip"]
    before = [i for i, s in enumerate(job.segments) if s.role in ("intro", "title_card")]
    after = [i for i, s in enumerate(job.segments) if s.role == "outro"]
    order = before + body + after
    if len(order) == 1:
        chains.append(f"[a{order[0]}]anull[aj]")
    else:
        chains.append("".join(f"[a{i}]" for i in order) + f"concat=n={len(order)}:v=0:a=1[aj]")
    return chains


def build_render(job: RenderJob) -> list[str]:
    """ffmpeg arguments (without the binary) rendering ``job`` in one process."""
    if job.loudness is not None and job.measured is None:
        raise ValueError("loudness target set but not measured: run build_loudness_pass first")
    n = len(job.segments)
    chains = [_video_chain(i, seg, job) for i, seg in enumerate(job.segments)]
    chains += [_audio_chain(i, seg, job) for i, seg in enumerate(job.segments)]
    body = [i for i, s in enumerate(job.segments) if s.role == "clip"]
    before = [i for i, s in enumerate(job.segments) if s.role in ("intro", "title_card")]
    after = [i for i, s in enumerate(job.segments) if s.role == "outro"]
    label, body_audio = _join([(f"[v{i}]", f"[a{i}]") for i in body], "[bv0]", "[ba]", chains)
    if job.subtitles_path:
        fonts = f":fontsdir={escape_option(job.fonts_dir)}" if job.fonts_dir else ""
        chains.append(f"{label}subtitles=filename={escape_option(job.subtitles_path)}{fonts}[bv1]")
        label = "[bv1]"
    if job.logo and job.logo_path:
        x, y = _logo_xy(job.logo, job.frame)
        width = _even(job.frame.width * job.logo.width)
        chains.append(f"[{n}:v:0]scale={width}:-2,format=rgba[logo]")
        chains.append(f"{label}[logo]overlay=x={x}:y={y}:eof_action=repeat:format=auto,format=yuv420p[bv2]")
        label = "[bv2]"
    parts = [(f"[v{i}]", f"[a{i}]") for i in before] + [(label, body_audio)] + [(f"[v{i}]", f"[a{i}]") for i in after]
    video_out, audio_out = _join(parts, "[vout]", "[aj]", chains)
    if job.loudness is not None:
        chains.append(f"{audio_out}{_loudnorm(job, measure=False)}[aout]")
        audio_out = "[aout]"
    return [
        "-hide_banner", "-nostdin", "-y", *_inputs(job),
        "-filter_complex", ";".join(chains),
        "-map", video_out, "-map", audio_out,
        "-c:v", "libx264", "-preset", job.preset, "-crf", str(job.crf), "-pix_fmt", "yuv420p",
        "-r", str(job.fps), "-c:a", "aac", "-b:a", "160k", "-ar", str(SAMPLE_RATE), "-ac", "2",
        "-movflags", "+faststart", "-f", job.container, job.output,
    ]


def build_loudness_pass(job: RenderJob) -> list[str]:
    """First loudnorm pass: decodes only the audio of the same inputs and prints the measurement."""
    segments_only = RenderJob(job.segments, job.frame, job.output, loudness=job.loudness, skip_noops=job.skip_noops)
    chains = audio_graph(segments_only)
    chains.append(f"[aj]{_loudnorm(job, measure=True)}[aout]")
    return ["-hide_banner", "-nostdin", "-y", *_inputs(segments_only), "-filter_complex", ";".join(chains),
            "-map", "[aout]", "-f", "null", "-"]


_JSON_BLOCK = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.DOTALL)


def parse_loudness(stderr: str) -> LoudnessMeasurement:
    """The JSON block ``loudnorm=print_format=json`` prints at the end of the first pass."""
    match = _JSON_BLOCK.search(stderr)
    if not match:
        raise ValueError("loudnorm printed no measurement")
    data = json.loads(match.group(0))

    def number(key: str) -> float:
        value = float(data[key])
        return max(value, -99.0) if value == value and value != float("-inf") else -99.0

    return LoudnessMeasurement(number("input_i"), number("input_tp"), number("input_lra"),
                               number("input_thresh"), number("target_offset"))


def build_copy_cut(source: str, start: float, duration: float | None, output: str, container: str = "mp4") -> list[str]:
    """A pure cut: stream copy, nothing re-encoded. The start snaps back to the keyframe at or before it."""
    args = ["-hide_banner", "-nostdin", "-y"]
    if start > 0:
        args += ["-ss", _fmt(start)]
    args += ["-i", source]
    if duration is not None:
        args += ["-t", _fmt(duration)]
    return args + ["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-avoid_negative_ts", "make_zero",
                   "-movflags", "+faststart", "-f", container, output]


def build_cover(source: str, output: str, frame: OutputFormat, *, at: float | None, title_file: str | None,
                font: str | None, title_lines: int = 1) -> list[str]:
    """One JPEG: a frame of ``source`` at ``at`` (or the image ``source``) fitted to the frame, title drawn on top."""
    w, h = frame.width, frame.height
    size = round(min(w, h) * 0.085)
    chain = (f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
             f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1")
    if title_file and font:
        chain += (
            f",drawtext=fontfile={escape_option(font)}:textfile={escape_option(title_file)}:fontsize={size}"
            f":fontcolor=white:line_spacing={round(size * 0.25)}:box=1:boxcolor=black@0.55:boxborderw={round(size * 0.4)}"
            f":x=(w-text_w)/2:y=h*{0.14 if h > w else 0.1:.2f}"
        )
    args = ["-hide_banner", "-nostdin", "-y"]
    if at is not None:
        args += ["-ss", _fmt(at)]
    return args + ["-i", source, "-frames:v", "1", "-vf", chain, "-q:v", "2", "-update", "1", "-f", "image2", output]
