"""How metric values read in Chinese: money in yuan, ratios as percentages, durations in minutes
or hours. Units are the strings of ``reports.metrics.registry.Unit``."""

from __future__ import annotations


def fmt(value: float | None, unit: str, unit_label: str = "次") -> str:
    if value is None:
        return "—"
    if unit == "fen":
        return f"{value / 100:,.2f} 元"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "minutes":
        return f"{value:,.1f} 分钟"
    if unit == "hours":
        return f"{value:,.1f} 小时"
    if unit == "score":
        return f"{value:.2f} 分"
    return f"{value:,.0f} {unit_label}"


def fmt_change(change: float | None) -> str:
    """A relative change as ``+12.5%`` / ``-3.0%``; ``—`` without a base."""
    if change is None:
        return "—"
    return f"{change * 100:+.1f}%"


def relative_change(current: float | None, base: float | None) -> float | None:
    if current is None or base is None or base == 0:
        return None
    return (current - base) / abs(base)


def in_display_unit(value: float, unit: str) -> float:
    """Configuration states money targets in yuan; everything else in the metric's own unit."""
    return value * 100 if unit == "fen" else value
