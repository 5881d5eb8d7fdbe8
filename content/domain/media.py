"""Facts about a media file, read from what ``ffmpeg -i`` prints.

The ffmpeg shipped in imageio-ffmpeg comes without ffprobe, so the probe runs
``ffmpeg -hide_banner -i FILE`` and parses its stream report here (pure, so it
is unit-tested on captured text). Frame counts, when asked for, come from a
stream-copy pass to the null muxer (no decoding) and are parsed by
``parse_frame_count``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_DURATION = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_BITRATE = re.compile(r"bitrate:\s*(\d+)\s*kb/s")
_INPUT = re.compile(r"^Input #0, ([^,]+(?:,[^,\s]+)*), from")
_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[0x[0-9a-f]+\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_SIZE = re.compile(r"(?<![\w])(\d{2,5})x(\d{2,5})(?![\w])")
_SAR = re.compile(r"SAR (\d+):(\d+)")
_FPS = re.compile(r"([\d.]+)(k?) fps")
_TBR = re.compile(r"([\d.]+)(k?) tbr")
_TBN = re.compile(r"([\d.]+)(k?) tbn")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_HZ = re.compile(r"(\d+) Hz")
_FRAME = re.compile(r"frame=\s*(\d+)")


@dataclass(frozen=True)
class VideoStream:
    codec: str
    width: int  # as stored
    height: int
    fps: float
    sar: tuple[int, int]
    rotation: int  # degrees clockwise the player turns the picture (0, 90, 180, 270)
    pix_fmt: str
    avg_fps: float = 0.0  # frames / duration as the container states it ("fps"); 0 when not stated
    tbr: float = 0.0  # the rate ffmpeg guesses from the timestamps ("tbr")
    tbn: float = 0.0  # ticks per second of the stream's time base ("tbn")

    def constant_at(self, fps: int) -> bool:
        """Stored at a constant ``fps``: the stated average and the timestamps' rate both equal it, and the
        time base holds that frame grid exactly (1 ms Matroska ticks do not hold 30 fps). A variable-rate
        phone clip shows an average below its ``tbr`` and fails this."""
        return (self.avg_fps == fps and self.tbr == fps and self.tbn > 0
                and self.tbn == int(self.tbn) and int(self.tbn) % fps == 0)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: rotation and a non-square SAR applied."""
        width = round(self.width * self.sar[0] / self.sar[1]) if self.sar[1] else self.width
        return (self.height, width) if self.rotation in (90, 270) else (width, self.height)


@dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int
    channels: int
    layout: str = ""  # "mono", "stereo", "5.1", ... as ffmpeg names it; "" when it names none
    sample_fmt: str = ""  # as decoded: fltp (AAC), s16 (PCM), ...


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration: float | None
    bitrate_kbps: int | None
    video: VideoStream | None
    audio: AudioStream | None
    frames: int | None = None  # only when counted

    @property
    def is_image(self) -> bool:
        return self.container in {"png_pipe", "image2", "jpeg_pipe", "webp_pipe", "bmp_pipe", "gif"} or (
            self.video is not None and self.video.codec in {"png", "mjpeg", "webp", "bmp"} and not self.audio
        )


class ProbeFailed(ValueError):
    """ffmpeg could not read the file; ``reason`` is ffmpeg's own last line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _channels(text: str) -> int:
    for name, count in (("mono", 1), ("stereo", 2), ("5.1", 6), ("7.1", 8), ("quad", 4), ("2.1", 3)):
        if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text):
            return count
    match = re.search(r"(\d+) channels", text)
    return int(match.group(1)) if match else 2


_SAMPLE_FMTS = {"u8", "s16", "s32", "s64", "flt", "dbl", "u8p", "s16p", "s32p", "s64p", "fltp", "dblp"}


def _layout(fields: list[str]) -> str:
    """The channel layout field of an audio stream line: the one after "NNNNN Hz"."""
    for i, value in enumerate(fields[:-1]):
        if value.endswith(" Hz"):
            return fields[i + 1].split("(")[0].strip()
    return ""


def _sample_fmt(fields: list[str]) -> str:
    return next((f.split(" ")[0] for f in fields if f.split(" ")[0] in _SAMPLE_FMTS), "")


def _rate(match: re.Match[str] | None) -> float:
    if not match:
        return 0.0
    return float(match.group(1)) * (1000 if match.group(2) else 1)


def parse_probe(stderr: str) -> MediaInfo:
    """Parse the report ``ffmpeg -hide_banner -i FILE`` writes to stderr (first video and audio stream)."""
    lines = stderr.splitlines()
    container = ""
    for line in lines:
        match = _INPUT.match(line)
        if match:
            container = match.group(1)
            break
    if not container:
        reason = next((ln.strip() for ln in reversed(lines) if ln.strip() and "output file" not in ln), "无法识别")
        raise ProbeFailed(reason)
    duration = None
    bitrate = None
    for line in lines:
        if "Duration:" in line:
            match = _DURATION.search(line)
            if match:
                h, m, s = match.groups()
                duration = int(h) * 3600 + int(m) * 60 + float(s)
            bmatch = _BITRATE.search(line)
            bitrate = int(bmatch.group(1)) if bmatch else None
            break
    video: VideoStream | None = None
    audio: AudioStream | None = None
    current: str | None = None
    for line in lines:
        match = _STREAM.match(line)
        if match:
            kind, rest = match.group(2), match.group(3)
            current = None
            if kind == "Video" and video is None and "attached pic" not in rest:
                size = _SIZE.search(rest)
                if not size:
                    continue
                sar = _SAR.search(rest)
                avg_fps, tbr = _rate(_FPS.search(rest)), _rate(_TBR.search(rest))
                fps = avg_fps or tbr
                pix = rest.split(",")[1].strip().split("(")[0].strip() if "," in rest else ""
                video = VideoStream(
                    codec=rest.split()[0].strip(","), width=int(size.group(1)), height=int(size.group(2)), fps=fps,
                    sar=(int(sar.group(1)), int(sar.group(2))) if sar and sar.group(2) != "0" else (1, 1),
                    rotation=0, pix_fmt=pix, avg_fps=avg_fps, tbr=tbr, tbn=_rate(_TBN.search(rest)),
                )
                current = "video"
            elif kind == "Audio" and audio is None:
                hz = _HZ.search(rest)
                fields = [f.strip() for f in rest.split(",")]
                audio = AudioStream(codec=rest.split()[0].strip(","), sample_rate=int(hz.group(1)) if hz else 0,
                                    channels=_channels(rest), layout=_layout(fields), sample_fmt=_sample_fmt(fields))
            continue
        if current == "video" and video is not None:
            rot = _ROTATION.search(line)
            if rot:
                # ffmpeg reports the display matrix counter-clockwise; players turn the other way.
                degrees = round(-float(rot.group(1))) % 360
                video = replace(video, rotation=degrees)
    if duration is None and video is None and audio is None:
        raise ProbeFailed("文件中没有音视频流")
    return MediaInfo(container, duration, bitrate, video, audio)


def parse_frame_count(stderr: str) -> int | None:
    """The final ``frame=`` of an ffmpeg run's statistics."""
    counts = _FRAME.findall(stderr)
    return int(counts[-1]) if counts else None


@dataclass(frozen=True)
class ProgressReport:
    out_time: float  # seconds of output written
    speed: float | None
    done: bool


def parse_progress_block(lines: list[str]) -> ProgressReport:
    """One ``-progress`` block (``key=value`` lines ending with ``progress=continue|end``)."""
    values = dict(line.split("=", 1) for line in lines if "=" in line)
    out_time = 0.0
    raw = values.get("out_time_us") or values.get("out_time_ms")  # both are microseconds
    if raw and raw.strip().lstrip("-").isdigit():
        out_time = max(0.0, int(raw) / 1_000_000)
    speed_text = values.get("speed", "").strip().rstrip("x")
    try:
        speed = float(speed_text)
    except ValueError:
        speed = None
    return ProgressReport(out_time, speed, values.get("progress", "").strip() == "end")
