"""The detail sheets' rows are spliced into the workbook as SpreadsheetML text (openpyxl is too slow
for a year of detail): what openpyxl reads back must be exactly what was streamed, with the
column's number formats and the body style, and awkward text must survive."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from reports.adapters.excel import _column_styles, _stream_rows, _table_sheet

COLUMNS = [("订单号", None, 30), ("时间", "datetime", 18), ("金额（元）", "fen_yuan", 12), ("评分", None, 8), ("备注", None, 20)]


def _write(path: Path, rows: list[list[object]]) -> None:
    wb = Workbook(write_only=True)
    first = _table_sheet(wb, "摘要", [("指标", None, 10)], [["问诊量"]])
    detail = _table_sheet(wb, "问诊明细", COLUMNS, ())
    styles = _column_styles(detail, [c[1] for c in COLUMNS])
    wb.save(path)
    _stream_rows(path, [(detail.path.lstrip("/"), iter(rows), styles)])
    assert first.path != detail.path


def test_streamed_rows_read_back_exactly(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["con_1", datetime(2026, 10, 1, 8, 30, 15), 30.0, 5, "a < b & c > d"],
        ["con_2", datetime(2026, 12, 31, 23, 59, 59), 0.01, None, "  前后空格  "],
        ["con_3", None, Decimal("12.5"), 3, "控制\x01字符"],
        ["con_4", datetime(2026, 1, 1), 1234567.89, 1, True],
    ]
    path = tmp_path / "d.xlsx"
    _write(path, rows)
    ws = load_workbook(path)["问诊明细"]
    assert ws.freeze_panes == "A2" and ws.column_dimensions["A"].width == 30
    assert [c.value for c in ws[1]] == [c[0] for c in COLUMNS]
    got = [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert got[0] == rows[0]
    assert got[1][:4] == ["con_2", datetime(2026, 12, 31, 23, 59, 59), 0.01, None] and got[1][4] == "  前后空格  "
    assert got[2] == ["con_3", None, 12.5, 3, "控制字符"]
    assert got[3][1] == datetime(2026, 1, 1) and got[3][2] == pytest.approx(1234567.89) and got[3][4] is True
    assert ws["B2"].number_format == "yyyy-mm-dd hh:mm" and ws["C2"].number_format == '"¥"#,##0.00'
    assert ws["A2"].number_format == "General" and ws["A2"].font.name == "等线" and ws["A2"].border.bottom.style == "thin"
    assert load_workbook(path)["摘要"]["A2"].value == "问诊量"  # the other sheets are copied untouched


def test_a_detail_sheet_without_rows_keeps_its_header(tmp_path: Path) -> None:
    path = tmp_path / "e.xlsx"
    _write(path, [])
    ws = load_workbook(path)["问诊明细"]
    assert ws.max_row == 1 and ws["A1"].value == "订单号"
