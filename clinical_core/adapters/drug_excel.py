"""Reads a drug catalogue workbook (.xlsx) with openpyxl: the first sheet,
the first row as the header, empty rows skipped."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from clinical_core.domain.drug_catalogue import check_header
from clinical_core.domain.errors import InvalidInput

MAX_ROWS = 50_000


def read_catalogue(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise InvalidInput("无法读取 Excel 文件，请确认是 .xlsx 格式", field="file") from exc
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise InvalidInput("Excel 文件是空的", field="file")
        columns = check_header(list(header))
        result = []
        for number, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            result.append((number, {name: values[i] if i < len(values) else None for name, i in columns.items()}))
            if len(result) > MAX_ROWS:
                raise InvalidInput(f"一次最多导入 {MAX_ROWS} 种药品", field="file")
        return result
    finally:
        workbook.close()
