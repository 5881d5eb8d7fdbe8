"""The detail sheets' rows are written as SpreadsheetML text into the workbook's zip before the rest
of the workbook exists (openpyxl is too slow for a year of detail, and the report stages them beside
its queries): what openpyxl reads back must be exactly what was streamed, with the column's number
formats and the body style, awkward text must survive, and the other sheets must be intact."""

from __future__ import annotations

import io
import threading
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from reports.adapters import excel
from reports.adapters.excel import (
    DetailsCancelled,
    DetailSheet,
    _finish,
    _table_sheet,
    stage_details,
)

COLUMNS = [("订单号", None, 30), ("时间", "datetime", 18), ("金额（元）", "fen_yuan", 12), ("评分", None, 8), ("备注", None, 20)]


def _write(path: Path, rows: list[list[object]]) -> excel.StagedDetails:
    staged = stage_details(path.with_name("staged.zip"), [DetailSheet("问诊明细", COLUMNS, iter(rows)),
                                                          DetailSheet("处方明细", COLUMNS[:2], iter([["rx_1", None]]))])
    wb = Workbook(write_only=True)
    details = [ws for ws, _ in excel._detail_sheets(wb, staged.sheets)]
    _table_sheet(wb, "摘要", [("指标", "count", 10)], [["问诊量"], [12]])
    excel._save(wb, path, details, staged)
    return staged


def test_streamed_rows_read_back_exactly(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["con_1", datetime(2026, 10, 1, 8, 30, 15), 30.0, 5, "a < b & c > d"],
        ["con_2", datetime(2026, 12, 31, 23, 59, 59), 0.01, None, "  前后空格  "],
        ["con_3", None, Decimal("12.5"), 3, "控制\x01字符"],
        ["con_4", datetime(2026, 1, 1), 1234567.89, 1, True],
    ]
    path = tmp_path / "d.xlsx"
    staged = _write(path, rows)
    assert staged.rows == (4, 1) and not staged.path.exists()
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
    book = load_workbook(path)
    assert book.sheetnames == ["摘要", "问诊明细", "处方明细"]
    ws = book["问诊明细"]
    assert ws.freeze_panes == "A2" and ws.column_dimensions["A"].width == 30
    assert [c.value for c in ws[1]] == [c[0] for c in COLUMNS]
    got = [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert got[0] == rows[0]
    assert got[1][:4] == ["con_2", datetime(2026, 12, 31, 23, 59, 59), 0.01, None] and got[1][4] == "  前后空格  "
    assert got[2] == ["con_3", None, 12.5, 3, "控制字符"]
    assert got[3][1] == datetime(2026, 1, 1) and got[3][2] == pytest.approx(1234567.89) and got[3][4] is True
    assert ws["B2"].number_format == "yyyy-mm-dd hh:mm" and ws["C2"].number_format == '"¥"#,##0.00'
    assert ws["A2"].number_format == "General" and ws["A2"].font.name == "等线" and ws["A2"].border.bottom.style == "thin"
    assert [list(r) for r in book["处方明细"].iter_rows(min_row=2, values_only=True)] == [["rx_1", None]]
    summary = book["摘要"]
    assert summary["A2"].value == "问诊量" and summary["A3"].value == 12 and summary["A3"].number_format == "#,##0"


def test_a_detail_sheet_without_rows_keeps_its_header(tmp_path: Path) -> None:
    path = tmp_path / "e.xlsx"
    assert _write(path, []).rows == (0, 1)
    ws = load_workbook(path)["问诊明细"]
    assert ws.max_row == 1 and ws["A1"].value == "订单号"


def test_a_workbook_whose_detail_sheets_differ_from_the_staged_ones_is_refused(tmp_path: Path) -> None:
    staged = stage_details(tmp_path / "s.zip", [DetailSheet("问诊明细", COLUMNS, iter([["con_1"]]))])
    wb = Workbook(write_only=True)
    other = _table_sheet(wb, "问诊明细", COLUMNS[:3], ())  # other columns than staged

    buffer = io.BytesIO()
    wb.save(buffer)
    with pytest.raises(RuntimeError, match="does not match"):
        _finish(tmp_path / "x.xlsx", buffer.getvalue(), [other.path.lstrip("/")], staged)
    assert not (tmp_path / "x.xlsx").exists()


def test_staging_stops_when_cancelled_and_leaves_no_file(tmp_path: Path) -> None:
    stop = threading.Event()

    def rows():
        for i in range(10_000):
            if i == 5000:
                stop.set()
            yield [f"con_{i}"]

    with pytest.raises(DetailsCancelled):
        stage_details(tmp_path / "s.zip", [DetailSheet("问诊明细", COLUMNS, rows())], stop.is_set)
    assert not (tmp_path / "s.zip").exists()
