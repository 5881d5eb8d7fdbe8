"""Print-ready package-card sheets: A4 PDF, 8 cards a page (2 × 4), each with its QR code and the
hospital's copy, from a jinja2 template rendered by WeasyPrint. QR codes are drawn locally
(segno, SVG) from each code's WeChat URL, so printing needs no call to WeChat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from jinja2 import Environment, select_autoescape

TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><style>
@page { size: A4; margin: 10mm; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; margin: 0; }
.grid { display: flex; flex-wrap: wrap; }
.card { box-sizing: border-box; width: 94mm; height: 66mm; border: 0.3mm dashed #999; padding: 4mm;
        display: flex; align-items: center; page-break-inside: avoid; }
.card svg { width: 40mm; height: 40mm; flex: none; }
.text { margin-left: 4mm; font-size: 10pt; line-height: 1.5; }
.hospital { font-weight: bold; font-size: 11pt; }
.seq { color: #666; font-size: 7pt; margin-top: 2mm; }
</style></head><body><div class="grid">
{% for card in cards %}<div class="card">{{ card.svg | safe }}<div class="text">
<div class="hospital">{{ hospital }}</div><div>{{ copy_text }}</div>
<div class="seq">{{ batch }} · {{ card.seq }}</div></div></div>{% endfor %}
</div></body></html>"""


@dataclass(frozen=True, slots=True)
class Card:
    scene: str
    url: str


def qr_svg(data: str) -> str:
    return segno.make(data, error="m").svg_inline(scale=4, border=2)


def qr_svg_file(data: str, path: Path) -> None:
    """A standalone SVG file (XML declaration, namespace), for designers and printers."""
    segno.make(data, error="m").save(str(path), kind="svg", scale=8, border=2)


def render_html(hospital: str, batch: str, copy_text: str, cards: Sequence[Card]) -> str:
    env = Environment(autoescape=select_autoescape(default=True))
    items = [{"svg": qr_svg(c.url or c.scene), "seq": c.scene.rsplit(":", 1)[-1]} for c in cards]
    return env.from_string(TEMPLATE).render(hospital=hospital, batch=batch, copy_text=copy_text, cards=items)


def write_pdf(path: Path, hospital: str, batch: str, copy_text: str, cards: Sequence[Card]) -> int:
    """Write the sheet; returns the number of pages."""
    from weasyprint import HTML

    document = HTML(string=render_html(hospital, batch, copy_text, cards)).render()
    document.write_pdf(str(path))
    return len(document.pages)
