"""Reads a platform's exported statistics: .xlsx (openpyxl) or .csv (UTF-8 with
or without BOM, or GB18030 as Excel on Chinese Windows saves it).

Exports sometimes put a caption line above the header (``数据更新时间：…``); the
header is the first of the first rows with at least three filled cells.
Returns the header and the data rows, each with its number as the sheet shows it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from clinical_core.domain.errors import InvalidInput

MAX_BYTES = 20 * 2**20
HEADER_SEARCH = 5


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _blank(values: list[Any] | tuple[Any, ...]) -> bool:
    return all(v is None or str(v).strip() == "" for v in values)


def _split(raw: list[list[Any]]) -> tuple[list[Any], list[tuple[int, list[Any]]]]:
    for index, row in enumerate(raw[:HEADER_SEARCH]):
        if sum(1 for v in row if v is not None and str(v).strip()) >= 3:
            rows = [(number, list(values)) for number, values in enumerate(raw[index + 1:], start=index + 2)
                    if not _blank(values)]
            return list(row), rows
    raise InvalidInput("找不到表头（前几行没有列名）", field="file")


def read_table(path: Path) -> tuple[list[Any], list[tuple[int, list[Any]]]]:
    if not path.is_file():
        raise InvalidInput(f"文件不存在：{path.name}", field="file")
    if path.stat().st_size > MAX_BYTES:
        raise InvalidInput(f"{path.name} 超过 {MAX_BYTES // 2**20} MB", field="file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        data = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - gb18030 decodes any byte string
            raise InvalidInput(f"{path.name} 的编码无法识别", field="file")
        return _split([list(r) for r in csv.reader(io.StringIO(text))])
    if suffix in (".xlsx", ".xlsm"):
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
            raise InvalidInput(f"无法读取 {path.name}，请确认是 .xlsx 格式", field="file") from exc
        try:
            return _split([list(r) for r in workbook.worksheets[0].iter_rows(values_only=True)])
        finally:
            workbook.close()
    raise InvalidInput(f"{path.name}：只支持 .xlsx 或 .csv 文件", field="file")
