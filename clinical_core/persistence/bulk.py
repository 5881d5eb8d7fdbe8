"""Bulk loading for large generated datasets (demo hospital, benchmarks).

SQLAlchemy's executemany path builds and processes parameters per row; for
millions of rows this module compiles each table's bind processors once,
turns rows into DB-ready tuples (``RowPreparer``, no connection needed, so a
generator process can do it), and hands them to the driver directly
(``BulkLoader``): ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

Into empty tables the loader can also defer the secondary and unique
indexes (and, on PostgreSQL, the foreign keys): they are dropped before the
first row and rebuilt by ``finish()``, a sorted build and one set-wise check
instead of millions of random B-tree inserts and per-row trigger checks, as
``pg_restore`` does. A duplicate or a dangling key then fails the rebuild,
and with it the whole transaction.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Index, Table, text
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

Processor = Callable[[Any], Any] | None
Converter = Callable[[Mapping[str, Any]], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class PreparedRows:
    """Rows of one table, ready for the driver: executemany parameters (SQLite)
    or the bytes of a ``COPY ... FROM STDIN`` in text format (PostgreSQL)."""

    table: str
    columns: tuple[str, ...]
    count: int
    rows: list[tuple[Any, ...]]
    copy_text: bytes = b""


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_formatter(column_type: Any) -> Callable[[Any], str]:
    """How one column's values are written in PostgreSQL's COPY text format."""
    affinity = column_type._type_affinity.__name__  # noqa: SLF001
    if affinity == "Boolean":
        return lambda v: "t" if v else "f"
    if affinity in ("Integer", "BigInteger", "SmallInteger", "Numeric", "Float"):
        return str
    if affinity == "DateTime":
        def timestamp(v: datetime) -> str:
            if v.tzinfo is None:
                raise ValueError("naive datetime in a bulk load")
            return v.isoformat()
        return timestamp
    if affinity == "Date":
        return date.isoformat
    if affinity == "JSON":
        return lambda v: json.dumps(v, ensure_ascii=False).translate(_COPY_ESCAPES)
    return lambda v: str(v).translate(_COPY_ESCAPES)


def _memo_by_identity(processor: Callable[[Any], Any], memo: dict[int, tuple[Any, Any]]) -> Callable[[Any], Any]:
    """Encode each distinct object once (generators share JSON values between rows).

    The memo lives for one ``prepare`` call and keeps the object alive, so an
    id cannot be reused by another object while it is in the memo.
    """

    def process(value: Any) -> Any:
        hit = memo.get(id(value))
        if hit is None or hit[0] is not value:
            hit = memo[id(value)] = (value, processor(value))
        return hit[1]

    return process


def _row_converter(keys: Sequence[str], processors: Sequence[Processor], none: str | None = None) -> Converter:
    """Build ``row -> tuple`` for one column list, calling only the processors that exist.

    Generated once per table: a straight-line tuple expression is about three
    times faster than a generic loop over (key, processor) pairs.
    """
    namespace: dict[str, Any] = {}
    items = []
    for i, (key, processor) in enumerate(zip(keys, processors, strict=True)):
        if processor is None:
            items.append(f"row[{key!r}]")
        else:
            namespace[f"p{i}"] = processor
            items.append(f"({none!r} if row[{key!r}] is None else p{i}(row[{key!r}]))")
    exec(f"def convert(row):\n    return ({', '.join(items)},)", namespace)  # noqa: S102 - keys are column names
    return namespace["convert"]


class RowPreparer:
    """Turns mappings into DB-ready tuples for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._converters: dict[tuple[str, tuple[str, ...]], Converter] = {}
        self._memo: dict[int, tuple[Any, Any]] = {}
        self.copy = dialect.name == "postgresql"

    def _converter(self, table: Table, keys: tuple[str, ...]) -> Converter:
        processors: list[Processor] = []
        for key in keys:
            column_type = table.c[key].type
            if self.copy:
                processor: Processor = _copy_formatter(column_type)
            else:
                processor = column_type._cached_bind_processor(self.dialect)  # noqa: SLF001 - SQLAlchemy's cache
            if column_type._type_affinity.__name__ == "JSON":  # noqa: SLF001
                processor = _memo_by_identity(processor or json.dumps, self._memo)
            processors.append(processor)
        return _row_converter(keys, processors, none="\\N" if self.copy else None)

    def prepare(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> PreparedRows:
        keys = tuple(rows[0].keys()) if rows else ()
        convert = self._converters.get((table.name, keys))
        if convert is None:
            convert = self._converters[(table.name, keys)] = self._converter(table, keys)
        try:
            if self.copy:
                text_rows = ["\t".join(values) for values in map(convert, rows)]
                data = ("\n".join(text_rows) + "\n").encode("utf-8") if text_rows else b""
                return PreparedRows(table.name, keys, len(rows), [], data)
            return PreparedRows(table.name, keys, len(rows), list(map(convert, rows)))
        finally:
            self._memo.clear()


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Switch SQLite's foreign-key enforcement off around a bulk load on a fresh connection.

    With enforcement on, a child row that arrives before its parent makes
    SQLite search the child table for every parent inserted later (quadratic
    without indexes). ``BulkLoader.finish`` checks every key instead. The
    pragma only takes effect outside a transaction, so call this before
    ``connection.begin()``.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    raw.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


class BulkLoader:
    """Loads prepared rows into tables over one connection (inside its transaction)."""

    def __init__(self, connection: Connection, *, defer_indexes: bool = False) -> None:
        """``defer_indexes`` is for empty tables. Related tables may arrive in any order:
        foreign keys are checked at the end (DEFERRABLE on PostgreSQL, see ``base.fk``;
        ``PRAGMA foreign_key_check`` in ``finish()`` on SQLite, where a caller may also
        switch enforcement off for the load, see ``sqlite_foreign_keys_off``)."""
        self.connection = connection
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET CONSTRAINTS ALL DEFERRED"))
        else:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        self.dialect = connection.dialect
        self.preparer = RowPreparer(self.dialect)
        self.defer_indexes = defer_indexes
        self._deferred: list[Index] = []
        self._deferred_keys: list[ForeignKeyConstraint] = []
        self.loaded: dict[str, int] = {}

    def load(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        return self.load_prepared(table, self.preparer.prepare(table, rows))

    def load_prepared(self, table: Table, prepared: PreparedRows) -> int:
        if not prepared.count:
            return 0
        if self.defer_indexes and table.name not in self.loaded:
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                self.connection.execute(DropIndex(index))
                self._deferred.append(index)
            if self.dialect.name == "postgresql":
                for key in sorted(table.foreign_key_constraints, key=lambda k: str(k.name)):
                    self.connection.execute(DropConstraint(key))
                    self._deferred_keys.append(key)
        quote = self.dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in prepared.columns)
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.dialect.name == "postgresql":
                with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
                    copy.write(prepared.copy_text)
            else:
                marks = ", ".join("?" * len(prepared.columns))
                cursor.executemany(f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", prepared.rows)
        finally:
            cursor.close()
        self.loaded[table.name] = self.loaded.get(table.name, 0) + prepared.count
        return prepared.count

    def finish(self) -> None:
        """Check foreign keys, rebuild deferred indexes; on PostgreSQL, move id sequences past the loaded ids."""
        if self.dialect.name == "postgresql":
            # Run the deferred foreign-key checks now: PostgreSQL refuses CREATE INDEX
            # on a table with pending trigger events.
            self.connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        for index in self._deferred:
            self.connection.execute(CreateIndex(index))
        for key in self._deferred_keys:
            self.connection.execute(AddConstraint(key))  # validates all rows in one pass
        self._deferred, self._deferred_keys = [], []
        if self.dialect.name == "sqlite":
            broken = self.connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                table, _rowid, parent, _fk = broken[0]
                raise ValueError(f"bulk load left {len(broken)} rows of {table} without their {parent} row")
            return
        for name in self.loaded:
            self.connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
            ))
