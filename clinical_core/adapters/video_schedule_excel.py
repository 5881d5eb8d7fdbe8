"""Reads a schedule workbook (.xlsx) with openpyxl: the first sheet, the first
row as the header (医生工号、日期、开始时间、结束时间、每号分钟、挂号费（元）), empty rows
skipped. Validation is the domain's (``video_schedule.parse_rows``)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.video_schedule import ScheduleRejected, check_header

MAX_ROWS = 5_000


def read_schedule(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise InvalidInput("无法读取 Excel 文件，请确认是 .xlsx 格式", field="file") from exc
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ScheduleRejected(["Excel 文件是空的"])
        columns = check_header(list(header))
        result = []
        for number, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            result.append((number, {key: values[i] if i < len(values) else None for key, i in columns.items()}))
            if len(result) > MAX_ROWS:
                raise InvalidInput(f"一次最多导入 {MAX_ROWS} 行排班", field="file")
        return result
    finally:
        workbook.close()
