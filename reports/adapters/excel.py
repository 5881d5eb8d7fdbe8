"""The Excel workbook (openpyxl, write-only mode throughout so a year of detail rows streams).

Sheets: 摘要 (headline figures, comparisons, suggestions and native line/bar charts over a trend
table), one sheet per module, one per breakdown, 渠道转化, and the detail sheets fed by an
iterator. Money is written in yuan (fen / 100, exact to the cent) with a ``¥#,##0.00`` number
format; ratios are fractions with a percentage format; headers are frozen and columns sized.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary
from zipfile import ZIP_DEFLATED, ZipFile

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter

from clinical_core.domain.time import SHANGHAI
from reports.domain.formatting import fmt_change
from reports.services.collect import MetricLine, ReportData

NAVY = "1F3A5F"
HEADER_FILL = PatternFill("solid", fgColor=NAVY)
HEADER_FONT = Font(name="等线", bold=True, color="FFFFFF")
TITLE_FONT = Font(name="等线", bold=True, size=16, color=NAVY)
BODY_FONT = Font(name="等线", size=11)
THIN = Border(bottom=Side(style="thin", color="D0D7E2"))
FORMATS = {"fen": '"¥"#,##0.00', "ratio": "0.0%", "minutes": "#,##0.0", "hours": "#,##0.0", "score": "0.00",
           "count": "#,##0", "fen_yuan": '"¥"#,##0.00', "datetime": "yyyy-mm-dd hh:mm"}
UNIT_NAMES = {"fen": "元", "ratio": "%", "minutes": "分钟", "hours": "小时", "score": "分"}


@dataclass(frozen=True, slots=True)
class DetailSheet:
    """A detail sheet: a title, columns ``(header, unit, width)`` and the rows (streamed)."""

    title: str
    columns: Sequence[tuple[str, str | None, int]]
    rows: Iterable[Sequence[Any]]


def cell_value(value: float | None, unit: str | None) -> float | int | None:
    if value is None:
        return None
    return value / 100 if unit == "fen" else value


def write_workbook(report: ReportData, path: Path, details: Sequence[DetailSheet] | StagedDetails = ()) -> Path:
    """The workbook at ``path``. ``details``: the detail sheets, or the same already staged by
    ``stage_details`` (beside the report's other work)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(details, StagedDetails):
        details = stage_details(path.with_name(f".{path.name}.details"), details)
    staged = details
    wb = Workbook(write_only=True)
    # the detail sheets first, as in the staged workbook (the same style ids); last in the tab order
    detail_sheets = [ws for ws, _ in _detail_sheets(wb, staged.sheets)]
    _summary(wb, report)
    for module in report.modules:
        _metric_sheet(wb, module, report.in_module(module), report)
    for breakdown in report.breakdowns:
        columns = [(breakdown.title.removeprefix("按"), None, 22)] + [
            (f"{m.label}{_unit_suffix(m.unit)}", m.unit, max(14, len(m.label) * 2 + 4)) for m in breakdown.metrics]
        _table_sheet(wb, breakdown.title, columns,
                     ([label, *(cell_value(v, m.unit) for v, m in zip(values, breakdown.metrics, strict=True))]
                      for label, values in breakdown.rows))
    if report.channels:
        _table_sheet(wb, "各渠道转化", [("渠道", None, 24), ("扫码关注（人）", "count", 16), ("首次问诊（人）", "count", 16),
                                     ("转化率", "ratio", 12)],
                     ([c.channel, c.base, c.converted, c.rate] for c in report.channels))
    _save(wb, path, detail_sheets, staged)
    return path


def _save(wb: Workbook, path: Path, detail_sheets: Sequence[Any], staged: StagedDetails) -> None:
    """The workbook with the detail sheets last, their staged rows spliced in by ``_finish``."""
    for ws in detail_sheets:  # the tab order (openpyxl names the parts in it when saving)
        wb._sheets.remove(ws)
        wb._sheets.append(ws)
    skeleton = io.BytesIO()
    wb.save(skeleton)
    _finish(path, skeleton.getvalue(), [ws.path.lstrip("/") for ws in detail_sheets], staged)


def _unit_suffix(unit: str) -> str:
    return f"（{UNIT_NAMES[unit]}）" if unit in UNIT_NAMES else ""


def _header(ws: Any, names: Sequence[str]) -> list[WriteOnlyCell]:
    cells = []
    for name in names:
        c = WriteOnlyCell(ws, value=name)
        c.font, c.fill = HEADER_FONT, HEADER_FILL
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cells.append(c)
    return cells


BOLD_FONT = Font(name="等线", size=11, bold=True)
_STYLES: WeakKeyDictionary[Workbook, dict[tuple[str | None, bool], StyleArray]] = WeakKeyDictionary()


def _cell(ws: Any, value: Any, unit: str | None = None, bold: bool = False) -> WriteOnlyCell:
    """A body cell (等线 11, thin bottom rule, the unit's number format).

    Assigning a font, border or number format through openpyxl's descriptors looks each style up
    in the workbook's style tables (hashing the whole style object) and, with a new ``Font`` per
    cell, cost most of a workbook's build time. The resulting style ids are the same for every
    cell of a kind, so they are computed once per workbook and (format, bold) and copied onto
    each cell; the value is bound after the style, so a datetime keeps the unit's format.
    """
    number_format = FORMATS[unit] if unit in FORMATS and isinstance(value, int | float | datetime) else None
    styles = _STYLES.setdefault(ws.parent, {})
    c = WriteOnlyCell(ws)
    style = styles.get((number_format, bold))
    if style is None:
        c.font = BOLD_FONT if bold else BODY_FONT
        c.border = THIN
        if number_format:
            c.number_format = number_format
        style = styles[(number_format, bold)] = copy(c._style)
    else:
        c._style = copy(style)
    c.value = value
    return c


def _table_sheet(wb: Workbook, title: str, columns: Sequence[tuple[str, str | None, int]], rows: Iterable[Sequence[Any]]) -> Any:
    ws = wb.create_sheet(title[:31])
    for i, (_, _, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.append(_header(ws, [c[0] for c in columns]))
    units = [c[1] for c in columns]
    for row in rows:
        ws.append([_cell(ws, v, u) for v, u in zip(row, units, strict=False)])
    return ws


# ---- detail sheets: rows streamed as SpreadsheetML -----------------------------------------------
#
# A year of detail is millions of cells, and openpyxl spends ~50 µs on each even in write-only mode
# (a cell object, its value bound and type-checked, an lxml element). The detail rows are plain
# values of a few known kinds, so they are written as the sheet's XML text directly, and before
# the rest of the workbook exists: ``stage_details`` starts the workbook's zip with the detail
# sheets (openpyxl writes each one's header row, widths and frozen pane; the rows go in as text),
# which the report service runs beside its metric queries and the PDF. ``write_workbook`` then
# adds every other part. The cells are what openpyxl itself writes: numbers as ``<v>``, datetimes
# as Excel serial days, text as inline strings. Their style ids are the first ones of a workbook
# (the detail sheets' styles are registered before anything else, in the staged workbook and in
# the final one alike), and the final workbook's header-only copy of each detail sheet must equal
# the staged one's, or the workbook is not written.

DETAIL_PART = "xl/worksheets/detail{}.xml"


@dataclass(frozen=True, slots=True)
class StagedDetails:
    """Detail sheets written into a workbook's zip (``path``) that waits for its other parts."""

    path: Path
    sheets: tuple[DetailSheet, ...]  # titles and columns (no rows)
    parts: tuple[tuple[str, str], ...]  # (part name in the zip, the sheet's XML without its body rows)
    rows: tuple[int, ...]  # body rows written per sheet


class DetailsCancelled(Exception):
    """Staging stopped because the report failed elsewhere."""


def _detail_sheets(wb: Workbook, details: Sequence[DetailSheet]) -> list[tuple[Any, list[tuple[int, int]]]]:
    """The detail sheets (header row only) and their body styles. Called first on a new workbook, so
    their styles take the same ids in every workbook."""
    sheets = []
    for detail in details:
        ws = _table_sheet(wb, detail.title, detail.columns, ())
        sheets.append((ws, _column_styles(ws, [c[1] for c in detail.columns])))
    return sheets


def stage_details(path: Path, details: Sequence[DetailSheet], cancelled: Callable[[], bool] = lambda: False
                  ) -> StagedDetails:
    """Start the workbook's zip at ``path`` with the detail sheets, rows and all (``cancelled`` is
    asked between blocks of rows; ``DetailsCancelled`` then)."""
    wb = Workbook(write_only=True)
    sheets = _detail_sheets(wb, details)
    skeleton = io.BytesIO()
    wb.save(skeleton)
    parts, counts = [], []
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with ZipFile(skeleton) as source, ZipFile(path, "w", ZIP_DEFLATED, compresslevel=1) as target:
            for i, ((ws, styles), detail) in enumerate(zip(sheets, details, strict=True), start=1):
                xml = _DIMENSION.sub("", source.read(ws.path.lstrip("/")).decode("utf-8"))
                head, tail = xml.split("</sheetData>", 1)
                name = DETAIL_PART.format(i)
                written = [0]
                with target.open(name, "w", force_zip64=True) as out:
                    out.write(head.encode())
                    for block in _rows_xml(detail.rows, styles, written):
                        if cancelled():
                            raise DetailsCancelled(detail.title)
                        out.write(block)
                    out.write(f"</sheetData>{tail}".encode())
                parts.append((name, xml))
                counts.append(written[0])
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StagedDetails(path, tuple(DetailSheet(d.title, tuple(d.columns), ()) for d in details), tuple(parts),
                         tuple(counts))


def _column_styles(ws: Any, units: Sequence[str | None]) -> list[tuple[int, int]]:
    """Per column: the style id of a text cell and of a number/datetime cell (with the unit's format)."""
    sample = {"datetime": datetime(2000, 1, 1)}
    return [(_cell(ws, "").style_id, _cell(ws, sample.get(str(u), 0), u).style_id) for u in units]


_EPOCH_ORDINAL = datetime(1899, 12, 30).toordinal()  # Excel's day 0 (1900 date system, after 1 Mar 1900)
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _text_xml(ref: str, value: object, style: int) -> str:
    text = str(value)
    if not text.isprintable():  # control characters are not allowed in XML; tabs and newlines are kept
        text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if "&" in text or "<" in text or ">" in text:
        text = text.translate(_ESCAPES)
    space = ' xml:space="preserve"' if text and (text[0].isspace() or text[-1].isspace()) else ""
    return f'<c r="{ref}" s="{style}" t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _cell_xml(ref: str, value: Any, styles: tuple[int, int]) -> str:
    kind = type(value)
    if kind is str:
        return _text_xml(ref, value, styles[0])
    if kind is int or (kind is float and math.isfinite(value)):
        return f'<c r="{ref}" s="{styles[1]}"><v>{value}</v></c>'
    if kind is datetime:  # wall-clock fields as written (the rows carry Shanghai local times)
        days = value.toordinal() - _EPOCH_ORDINAL + (
            value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
        return f'<c r="{ref}" s="{styles[1]}"><v>{days!r}</v></c>'
    if kind is bool:
        return f'<c r="{ref}" s="{styles[0]}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, Decimal) and value.is_finite():
        return f'<c r="{ref}" s="{styles[1]}"><v>{value}</v></c>'
    if isinstance(value, datetime | int | float) and not isinstance(value, bool):  # subclasses: the slow way
        return _cell_xml(ref, datetime.fromisoformat(value.isoformat()) if isinstance(value, datetime)
                         else float(value) if isinstance(value, float) else int(value), styles)
    return _text_xml(ref, value, styles[0])


def _rows_xml(rows: Iterable[Sequence[Any]], styles: Sequence[tuple[int, int]], written: list[int] | None = None,
              batch: int = 2000) -> Iterator[bytes]:
    """The rows' XML in blocks. Plain text without markup characters or edge spaces, numbers and
    datetimes take the inlined paths (a million rows: every µs per cell counts); anything else
    goes through ``_cell_xml``."""
    columns = [(get_column_letter(i), f'" s="{text}" t="inlineStr"><is><t>', f'" s="{number}"><v>', (text, number))
               for i, (text, number) in enumerate(styles, start=1)]
    epoch = _EPOCH_ORDINAL
    chunk: list[str] = []
    append = chunk.append
    r = 1
    for r, row in enumerate(rows, start=2):
        append(f'<row r="{r}">')
        for (letter, text_open, number_open, style), v in zip(columns, row, strict=False):
            kind = type(v)
            if kind is str:
                if (v.isprintable() and "&" not in v and "<" not in v and ">" not in v
                        and v[:1] != " " and v[-1:] != " "):
                    append(f'<c r="{letter}{r}{text_open}{v}</t></is></c>')
                else:
                    append(_text_xml(f"{letter}{r}", v, style[0]))
            elif kind is datetime:
                days = v.toordinal() - epoch + (v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6) / 86400
                append(f'<c r="{letter}{r}{number_open}{days!r}</v></c>')
            elif kind is int or (kind is float and math.isfinite(v)):
                append(f'<c r="{letter}{r}{number_open}{v}</v></c>')
            elif v is not None:
                append(_cell_xml(f"{letter}{r}", v, style))
        append("</row>")
        if len(chunk) >= batch:
            yield "".join(chunk).encode()
            chunk.clear()
    if chunk:
        yield "".join(chunk).encode()
    if written is not None:
        written[0] = r - 1


_DIMENSION = re.compile(r"<dimension [^>]*/>")  # optional; openpyxl's would name the header row only


def _finish(path: Path, skeleton: bytes, detail_parts: Sequence[str], staged: StagedDetails) -> None:
    """Add the workbook's other parts to the staged zip, pointing its detail sheets at the staged
    parts, and move it to ``path``."""
    if len(detail_parts) != len(staged.parts):
        raise ValueError("detail sheets and staged parts differ in number")
    renamed = {}
    with ZipFile(io.BytesIO(skeleton)) as source:
        for own, (name, xml) in zip(detail_parts, staged.parts, strict=True):
            if _DIMENSION.sub("", source.read(own).decode("utf-8")) != xml:
                raise RuntimeError(f"staged detail sheet {name} does not match the workbook's {own}")
            renamed[f'"/{own}"'] = f'"/{name}"'
        try:
            with ZipFile(staged.path, "a", ZIP_DEFLATED, compresslevel=1) as target:
                for item in source.infolist():
                    if item.filename in detail_parts:
                        continue
                    data = source.read(item.filename)
                    if item.filename in ("[Content_Types].xml", "xl/_rels/workbook.xml.rels"):
                        text = data.decode("utf-8")
                        for old, new in renamed.items():
                            if text.count(old) != 1:
                                raise RuntimeError(f"{item.filename}: expected one reference to {old}")
                            text = text.replace(old, new)
                        data = text.encode("utf-8")
                    target.writestr(item, data)
        except BaseException:
            staged.path.unlink(missing_ok=True)
            raise
    os.replace(staged.path, path)


LINE_COLUMNS = [("指标", 30), ("本期", 16), ("上期", 16), ("环比", 10), ("去年同期", 16), ("同比", 10), ("目标", 14),
                ("是否达标", 10)]


def _line_row(ws: Any, m: MetricLine) -> list[WriteOnlyCell]:
    met = {True: "达标", False: "未达标", None: ""}[m.target_met]
    return [_cell(ws, f"{m.label}{_unit_suffix(m.unit)}", bold=m.headline), _cell(ws, cell_value(m.value, m.unit), m.unit),
            _cell(ws, cell_value(m.previous, m.unit), m.unit), _cell(ws, fmt_change(m.mom)),
            _cell(ws, cell_value(m.year_ago, m.unit), m.unit), _cell(ws, fmt_change(m.yoy)),
            _cell(ws, cell_value(m.target, m.unit), m.unit), _cell(ws, met)]


def _metric_sheet(wb: Workbook, module: str, lines: Sequence[MetricLine], report: ReportData) -> None:
    ws = wb.create_sheet(module[:31])
    for i, (_, width) in enumerate(LINE_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "B2"
    ws.append(_header(ws, [name for name, _ in LINE_COLUMNS]))
    for m in lines:
        ws.append(_line_row(ws, m))


def _summary(wb: Workbook, report: ReportData) -> None:
    ws = wb.create_sheet("摘要")
    for i, (_, width) in enumerate(LINE_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    for col in "JKLMNOP":
        ws.column_dimensions[col].width = 12
    title = WriteOnlyCell(ws, value=report.title)
    title.font = TITLE_FONT
    ws.append([title])
    generated = report.generated_at.astimezone(SHANGHAI)
    sub = WriteOnlyCell(ws, value=f"{report.subtitle}　统计期间：{report.spec.period.label}　生成时间：{generated:%Y-%m-%d %H:%M}（北京时间）")
    sub.font = Font(name="等线", size=10, color="666666")
    ws.append([sub])
    ws.append([])
    ws.freeze_panes = "A5"
    ws.append(_header(ws, [name for name, _ in LINE_COLUMNS]))
    headlines = report.headlines or report.lines[:6]
    for m in headlines:
        ws.append(_line_row(ws, m))
    ws.append([])
    row = 5 + len(headlines) + 1
    # the trend table the charts read: months down, headline metrics across
    charted = [m for m in headlines if m.series]
    trend_top = row + 1
    ws.append(_header(ws, ["月份", *(f"{m.label}{_unit_suffix(m.unit)}" for m in charted)]))
    months = [label for label, _ in charted[0].series] if charted else []
    for i, month in enumerate(months):
        ws.append([_cell(ws, month), *(_cell(ws, cell_value(m.series[i][1], m.unit), m.unit) for m in charted)])
    trend_bottom = trend_top + len(months)
    row = trend_bottom + 1
    ws.append([])
    ws.append([_cell(ws, "优化建议", bold=True)])
    if report.suggestions:
        for i, s in enumerate(report.suggestions, start=1):
            ws.append([_cell(ws, f"{i}. {s.sentence}")])
    else:
        ws.append([_cell(ws, "本期各项指标未触发任何建议规则。")])
    if months:
        _charts(ws, charted, trend_top, trend_bottom)


def _charts(ws: Any, charted: Sequence[MetricLine], top: int, bottom: int) -> None:
    cats = Reference(ws, min_col=1, min_row=top + 1, max_row=bottom)
    anchors = ["J1", "J18", "J35", "J52", "J69", "J86"]
    for i, m in enumerate(charted[: len(anchors)]):
        chart: Any = BarChart() if m.unit in ("count", "fen") else LineChart()
        chart.title = f"{m.label}（近 {bottom - top} 个月）"
        chart.height, chart.width = 7.5, 16
        chart.legend = None
        data = Reference(ws, min_col=i + 2, min_row=top, max_row=bottom)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(cats)
        chart.y_axis.number_format = FORMATS.get(m.unit, "General")
        chart.y_axis.delete = False
        chart.x_axis.delete = False
        ws.add_chart(chart, anchors[i])
