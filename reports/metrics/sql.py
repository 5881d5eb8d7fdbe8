"""Small SQL expressions the fact queries share, compiled per dialect in one place.

``minutes_between(later, earlier)`` is the only dialect difference the metrics need: SQLite keeps
UTC text and subtracts ``julianday`` values, PostgreSQL subtracts ``timestamptz`` values and
takes the epoch of the interval. Both give fractional minutes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class _seconds_between(FunctionElement[float]):
    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(_seconds_between)
def _seconds_default(element: _seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"
            " * 86400.0)")


@compiles(_seconds_between, "postgresql")
def _seconds_pg(element: _seconds_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"(extract(epoch from ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})))"


def seconds_between(later: ColumnElement[Any], earlier: ColumnElement[Any]) -> ColumnElement[float]:
    return _seconds_between(later, earlier)


def minutes_between(later: ColumnElement[Any], earlier: ColumnElement[Any]) -> ColumnElement[float]:
    return seconds_between(later, earlier) / 60.0


def hours_between(later: ColumnElement[Any], earlier: ColumnElement[Any]) -> ColumnElement[float]:
    return seconds_between(later, earlier) / 3600.0
