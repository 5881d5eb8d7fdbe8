"""Charts for the PDF, drawn with matplotlib (Agg, no display) in Chinese.

The CJK font is found among the system fonts (Noto Sans CJK SC, else WenQuanYi Micro Hei).
Charts are PNG at 160 dpi as ``data:`` URIs: inline SVG with text as paths was tried first, and
WeasyPrint spent most of a report's time styling and drawing its thousands of nodes (and the
charts' element ids collided across one page).
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Sequence
from functools import cache

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager
from matplotlib import pyplot as plt
from matplotlib.ticker import FuncFormatter

CJK_FAMILIES = ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "Noto Sans CJK JP")
NAVY, TEAL, GREY, RED = "#1F3A5F", "#2A9D8F", "#9AA5B1", "#C8553D"


@cache
def cjk_family() -> str:
    available = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in available:
            return family
    raise RuntimeError("未找到中文字体：请安装 fonts-noto-cjk 或 fonts-wqy-microhei（make setup）")


# matplotlib's rcParams (set per chart by ``rc_context``) and pyplot's figure list are global: one
# chart at a time in this process (the report service draws some on a worker thread)
_DRAWING = threading.RLock()


def _style() -> dict[str, object]:
    return {"font.family": [cjk_family()], "font.size": 9, "axes.unicode_minus": False,
            "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": GREY, "axes.titleweight": "bold",
            "axes.titlesize": 10, "xtick.color": "#333333", "ytick.color": "#333333"}


DPI = 160  # sharp on A4 at the printed size (about 85 mm wide); rasterising dominates the build time


def _png(fig: plt.Figure) -> str:
    """The figure as an ``<img>`` with a PNG data URI, sized in the page by CSS."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)  # constrained layout: no second "tight" draw pass
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}">'



def _value_formatter(unit: str) -> FuncFormatter:
    def f(v: float, _pos: int) -> str:
        if unit == "fen":
            return f"{v / 100:,.0f}"
        if unit == "ratio":
            return f"{v * 100:.0f}%"
        return f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"
    return FuncFormatter(f)


def trend_chart(title: str, unit: str, points: Sequence[tuple[str, float | int | None]], *, bar: bool,
                width: float = 3.4, height: float = 1.9) -> str:
    """Twelve months of one metric; the last point (this period) highlighted."""
    with _DRAWING, plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        labels = [label.replace("年", "年\n") for label, _ in points]
        values = [0 if v is None else v for _, v in points]
        if bar:
            colors = [GREY] * (len(values) - 1) + [NAVY]
            ax.bar(labels, values, color=colors, width=0.65)
        else:
            xs = [i for i, (_, v) in enumerate(points) if v is not None]
            ys = [points[i][1] for i in xs]
            ax.plot(xs, ys, color=TEAL, marker="o", markersize=3, linewidth=1.6)
            if xs and xs[-1] == len(points) - 1:
                ax.plot([xs[-1]], [ys[-1]], marker="o", color=NAVY, markersize=5)
            ax.set_xticks(range(len(labels)), labels)
        unit_name = {"fen": "（元）", "ratio": "", "minutes": "（分钟）", "hours": "（小时）", "score": "（分）"}.get(unit, "")
        ax.set_title(f"{title}{unit_name}", loc="left")
        ax.yaxis.set_major_formatter(_value_formatter(unit))
        ax.tick_params(axis="x", labelsize=6.5, rotation=0)
        ax.grid(axis="y", color="#E5E9F0", linewidth=0.6)
        ax.set_axisbelow(True)
        return _png(fig)


def ranking_chart(title: str, unit: str, rows: Sequence[tuple[str, float | int | None]], *, highlight: set[str] | None = None,
                  width: float = 6.8, height: float | None = None) -> str:
    """Horizontal bars, largest on top (departments, channels)."""
    rows = [(label, 0 if v is None else v) for label, v in rows][:12]
    with _DRAWING, plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(width, height or max(1.4, 0.32 * len(rows) + 0.6)), layout="constrained")
        labels = [r[0] for r in rows][::-1]
        values = [r[1] for r in rows][::-1]
        colors = [RED if highlight and label in highlight else NAVY for label in labels]
        ax.barh(labels, values, color=colors, height=0.6)
        ax.set_title(title, loc="left")
        ax.xaxis.set_major_formatter(_value_formatter(unit))
        span = max(values) if values and max(values) > 0 else 1
        for y, v in enumerate(values):
            text = f"{v / 100:,.0f}" if unit == "fen" else f"{v * 100:.1f}%" if unit == "ratio" else f"{v:,.0f}"
            ax.text(v + span * 0.01, y, text, va="center", fontsize=7, color="#333333")
        ax.set_xlim(0, span * 1.15)
        ax.grid(axis="x", color="#E5E9F0", linewidth=0.6)
        ax.set_axisbelow(True)
        return _png(fig)
