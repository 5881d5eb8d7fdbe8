"""The one renderer for every listing: ``table`` (rich), ``json``, ``csv``.

Data goes to stdout; progress and errors to stderr. Every listing command
takes ``--format`` and the ``--json`` shortcut through ``FormatOpt`` and
``JsonOpt``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clinical_core.domain.time import to_local


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="输出格式：table、json 或 csv")]
JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出（等同 --format json）")]


def choose(fmt: Format, as_json: bool) -> Format:
    return Format.json if as_json else fmt


def console(stderr: bool = False) -> Console:
    """A console made per call, so width and colour follow the environment (tests fix COLUMNS)."""
    width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else None
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return to_local(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return "、".join(_cell(v) for v in value)
    return str(value)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_plain(data), ensure_ascii=False, indent=2) + "\n")


def render(
    rows: Sequence[Any],
    columns: Sequence[tuple[str, str]],
    fmt: Format,
    *,
    title: str | None = None,
    empty: str = "（无记录）",
) -> None:
    """Render ``rows`` (dataclasses or mappings); ``columns`` are (field, Chinese header)."""
    records = [_plain(r) if not isinstance(r, Mapping) else dict(r) for r in rows]
    if fmt is Format.json:
        emit_json([{k: _plain(r.get(k)) for k, _ in columns} for r in records])
        return
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([k for k, _ in columns])
        for r in records:
            writer.writerow([_cell(r.get(k)) for k, _ in columns])
        return
    out = console()
    if not records:
        out.print(empty)
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for r in records:
        table.add_row(*(_cell(r.get(k)) for k, _ in columns))
    out.print(table)


def render_object(data: Mapping[str, Any], labels: Mapping[str, str], fmt: Format, *, title: str | None = None) -> None:
    """A single result as key/value pairs (or one JSON object)."""
    if fmt is Format.json:
        emit_json(data)
        return
    rows = [{"key": labels.get(k, k), "value": _cell(v)} for k, v in data.items()]
    render(rows, [("key", "项目"), ("value", "值")], fmt, title=title)


def info(message: str) -> None:
    """A status line for people (stderr, so stdout stays parseable)."""
    console(stderr=True).print(message)
