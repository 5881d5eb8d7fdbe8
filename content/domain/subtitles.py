"""Chinese subtitles: SRT parsed with line numbers, turned into ASS sized for the output frame.

An SRT burned in directly is laid out by libass in a 384×288 script space and
scaled up, so on a 1080×1920 frame the font and margins come out wrong and
long lines run off the sides. The ASS written here declares the output's own
resolution (``PlayResX/PlayResY``), a font size and bottom margin derived from
it, and breaks long Chinese lines itself (libass only breaks at spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinical_core.domain.errors import InvalidInput
from content.domain.timecode import format_ass

_TIMING = re.compile(
    r"^\s*(\d{1,2}):(\d{2}):(\d{2})[,.](\d{1,3})\s*-->\s*(\d{1,2}):(\d{2}):(\d{2})[,.](\d{1,3})(?:\s+.*)?$"
)
_TAGS = re.compile(r"</?(?:i|b|u|font)[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Cue:
    index: int
    start: float
    end: float
    text: str  # lines joined with "\n", SRT formatting tags removed
    line: int  # line of the timing row in the SRT file


class SubtitleError(InvalidInput):
    """A malformed SRT: names the file and the line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"字幕文件 {file} 第 {line} 行：{message}", field="subtitles")
        self.file, self.line = file, line


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    if int(m) >= 60 or int(s) >= 60:
        raise ValueError
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_srt(text: str, file: str) -> list[Cue]:
    """Parse SRT text. Tolerates a BOM, CRLF and missing trailing blank lines; nothing else."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[Cue] = []
    i, n = 0, len(lines)
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        number_line = i + 1
        number = lines[i].strip()
        if not number.isdigit():
            raise SubtitleError(file, number_line, f"应为字幕序号（数字），实际是「{number[:30]}」")
        i += 1
        if i >= n or not lines[i].strip():
            raise SubtitleError(file, number_line + 1, "序号后缺少时间轴（如 00:00:01,000 --> 00:00:02,500）")
        match = _TIMING.match(lines[i])
        if not match:
            raise SubtitleError(file, i + 1, f"时间轴格式应为 00:00:01,000 --> 00:00:02,500，实际是「{lines[i].strip()[:40]}」")
        try:
            start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        except ValueError:
            raise SubtitleError(file, i + 1, "时间轴中的分、秒应小于 60") from None
        if end <= start:
            raise SubtitleError(file, i + 1, "结束时间应晚于开始时间")
        timing_line = i + 1
        i += 1
        body: list[str] = []
        while i < n and lines[i].strip():
            body.append(_TAGS.sub("", lines[i].strip()))
            i += 1
        if not body:
            raise SubtitleError(file, timing_line, "这条字幕没有文字")
        cues.append(Cue(int(number), start, end, "\n".join(body), timing_line))
    if not cues:
        raise SubtitleError(file, 1, "文件中没有字幕")
    return cues


@dataclass(frozen=True)
class AssLayout:
    width: int
    height: int
    font_size: int
    margin_v: int
    margin_h: int
    max_units_per_line: int  # a CJK character counts 2 units, ASCII 1

    @classmethod
    def for_frame(cls, width: int, height: int) -> AssLayout:
        portrait = height > width
        font_size = max(12, round(min(width, height) * (0.055 if portrait else 0.06)))
        # Vertical videos: keep clear of the platform's caption and buttons at the bottom.
        margin_v = round(height * (0.16 if portrait else 0.06))
        margin_h = round(width * 0.06)
        usable = width - 2 * margin_h
        return cls(width, height, font_size, margin_v, margin_h, max(4, int(usable / (font_size * 0.5 * 1.05))))


def _units(char: str) -> int:
    return 1 if ord(char) < 0x2E80 else 2


_NO_LINE_START = set("，。、；：？！）》」』”’,.;:?!)")


def wrap(text: str, max_units: int) -> list[str]:
    """Break a line to at most ``max_units`` display units; never start a line with closing punctuation."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        current, used = "", 0
        for char in paragraph:
            width = _units(char)
            if used + width > max_units and current and char not in _NO_LINE_START:
                out.append(current.rstrip())
                current, used = "", 0
                if char == " ":
                    continue
            current += char
            used += width
        out.append(current)
    return [line for line in out if line.strip()] or [""]


def _ass_text(line: str) -> str:
    return line.replace("\\", "\\\\").replace("{", "｛").replace("}", "｝")


def to_ass(cues: list[Cue], layout: AssLayout, font_name: str, *, offset: float = 0.0) -> str:
    """An ASS script for the frame in ``layout``; cue times shifted by ``offset`` seconds."""
    outline = max(1, round(layout.font_size * 0.06))
    header = [
        "[Script Info]",
        "; 由 opsctl 生成：分辨率与输出一致，中文字幕不越界",
        "ScriptType: v4.00+",
        f"PlayResX: {layout.width}",
        f"PlayResY: {layout.height}",
        "WrapStyle: 2",  # no automatic wrapping: lines are broken here
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: TV.709",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
        "MarginR, MarginV, Encoding",
        f"Style: Default,{font_name},{layout.font_size},&H00FFFFFF,&H000000FF,&H00000000,&H80000000,0,0,0,0,100,100,"
        f"0,0,1,{outline},{max(1, outline // 2)},2,{layout.margin_h},{layout.margin_h},{layout.margin_v},134",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    events = []
    for cue in cues:
        text = "\\N".join(_ass_text(line) for line in wrap(cue.text, layout.max_units_per_line))
        events.append(
            f"Dialogue: 0,{format_ass(cue.start + offset)},{format_ass(cue.end + offset)},Default,,0,0,0,,{text}"
        )
    return "\n".join(header + events) + "\n"
