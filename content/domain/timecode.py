"""Timecodes as staff write them: ``12.5``, ``01:02.5``, ``00:01:02.500`` or ``00:01:02,500``."""

from __future__ import annotations

import re

_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d{1,6})?)$")


def parse_seconds(value: object) -> float:
    """Seconds as a float; raises ``ValueError`` with a Chinese message on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"时间点格式不对：{value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        match = _CLOCK.match(text)
        if match:
            hours, minutes, rest = match.groups()
            if int(minutes) >= 60 or float(rest.replace(",", ".")) >= 60:
                raise ValueError(f"时间点格式不对：{text}（分、秒应小于 60）")
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"时间点格式不对：{text}（应为秒数或 时:分:秒.毫秒）") from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"时间点不能为负或无穷：{value}")
    return round(seconds, 6)


def format_clock(seconds: float, *, decimal: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``decimal=","`` gives the SRT form)."""
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def format_ass(seconds: float) -> str:
    """ASS times: ``H:MM:SS.cc`` (centiseconds)."""
    centis = int(round(seconds * 100))
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6000)
    secs, centis = divmod(centis, 100)
    return f"{hours:d}:{minutes:02d}:{secs:02d}.{centis:02d}"
