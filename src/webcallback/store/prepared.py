"""Statements of the request path, compiled once per dialect and run on the driver's cursor.

SQLAlchemy Core costs ~27 µs to execute even a prebuilt, cached SELECT by primary key on SQLite,
where the driver itself takes ~5 µs (research/stack.md; BENCHMARKS.md "API throughput"); the web
callback path runs about ten statements. A `Prepared` keeps what SQLAlchemy would work out on every
execution: the SQL text for the dialect, the order of its parameters, the bind processors of their
types (so a datetime or a Decimal is stored exactly as SQLAlchemy would store it) and the result
processors of the selected columns. It runs inside the caller's SQLAlchemy connection and
transaction, so `Database.unit()` and commits work as for any other statement.

It reads SQLAlchemy internals to do so; `store/_sqlalchemy.py` checks their shape on import.

Limits, checked when a statement is prepared: no expanding (`IN` list) parameters, no Python-side
column defaults on INSERT (the values must all be given). Same results as `Connection.execute`, on
SQLite and PostgreSQL (tests/foundation/test_prepared.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from webcallback.store import _sqlalchemy

_sqlalchemy.check()  # at start-up: fail loudly if an upgrade moved what is read below

Processor = Callable[[Any], Any] | None


class NotPreparable(Exception):
    """The statement uses something `Prepared` does not handle."""


@dataclass(frozen=True)
class _Bind:
    name: str
    default: Any  # the value when the caller gives none (literals in the statement), or _REQUIRED
    process: Processor


_REQUIRED = object()


class _Compiled:
    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys or ()) or None)
        if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DDL and the like
            raise NotPreparable(str(statement))
        by_name: dict[str, BindParameter[Any]] = {name: bp for bp, name in compiled.bind_names.items()}
        for bp in by_name.values():
            if bp.expanding:
                raise NotPreparable(f"expanding parameter {bp.key!r} in {compiled.string!r}")
        order = list(compiled.positiontup or ()) if compiled.positional else list(by_name)
        self.positional = compiled.positional
        self.sql = compiled.string
        self.binds = [self._bind(name, by_name[name], dialect) for name in order]
        self.names = [c.key for c in getattr(statement, "selected_columns", ())]
        self.types = [c.type for c in getattr(statement, "selected_columns", ())]
        self.dialect = dialect
        self.results: list[Processor] | None = None  # from the first cursor's type codes

    @staticmethod
    def _bind(name: str, bp: BindParameter[Any], dialect: Dialect) -> _Bind:
        if bp.callable is not None:
            raise NotPreparable(f"callable default for {name!r}")
        process = bp.type.dialect_impl(dialect).bind_processor(dialect)
        return _Bind(name, _REQUIRED if bp.required else bp.value, process)

    def parameters(self, given: Mapping[str, Any]) -> Any:
        values = []
        for bind in self.binds:
            value = given.get(bind.name, bind.default)
            if value is _REQUIRED:
                if bind.name not in given:
                    raise KeyError(f"no value for parameter {bind.name!r}")
                value = None
            values.append(bind.process(value) if bind.process is not None and value is not None else value)
        if self.positional:
            return tuple(values)
        return {bind.name: value for bind, value in zip(self.binds, values, strict=True)}

    def row(self, raw: Sequence[Any], description: Any) -> dict[str, Any]:
        if self.results is None:
            self.results = [
                t.dialect_impl(self.dialect).result_processor(self.dialect, d[1])
                for t, d in zip(self.types, description, strict=True)
            ]
        return {
            name: (process(value) if process is not None else value)
            for name, process, value in zip(self.names, self.results, raw, strict=True)
        }


class Result:
    """What a prepared statement gave: rows as dicts, or the count of rows it changed."""

    def __init__(self, compiled: _Compiled, cursor: Any) -> None:
        self._compiled = compiled
        self._cursor = cursor
        self.rowcount: int = cursor.rowcount
        # The row id an INSERT gave (SQLite; PostgreSQL's driver has none: use RETURNING there).
        self.lastrowid: int | None = getattr(cursor, "lastrowid", None)

    def first(self) -> dict[str, Any] | None:
        raw = self._cursor.fetchone()
        return None if raw is None else self._compiled.row(raw, self._cursor.description)

    def all(self) -> list[dict[str, Any]]:
        description = self._cursor.description
        return [self._compiled.row(raw, description) for raw in self._cursor.fetchall()]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else next(iter(row.values()))


class Prepared:
    """A Core statement (or one per dialect name) run through the driver's cursor.

    `column_keys` is for INSERTs built from the table alone: the columns the values will name."""

    def __init__(
        self, statement: ClauseElement | Mapping[str, ClauseElement], column_keys: Iterable[str] | None = None
    ) -> None:
        self._statements = statement if isinstance(statement, Mapping) else None
        self._statement = None if isinstance(statement, Mapping) else statement
        self._column_keys = tuple(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self._statement if self._statements is None else self._statements[dialect.name]
            assert statement is not None
            compiled = self._compiled[dialect.name] = _Compiled(statement, dialect, self._column_keys)
        return compiled

    def execute(self, connection: Connection, parameters: Mapping[str, Any] | None = None) -> Result:
        compiled = self._for(connection.dialect)
        if not connection.in_transaction():
            connection.begin()  # as Connection.execute would ("autobegin")
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.sql, compiled.parameters(parameters or {}))
        return Result(compiled, cursor)


class PreparedInsert:
    """`INSERT INTO table` of a row given as a dict, prepared once per set of columns the rows
    name (the callers' rows vary a little: optional columns left out)."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self._by_columns: dict[tuple[str, ...], Prepared] = {}

    def execute(self, connection: Connection, row: Mapping[str, Any]) -> Result:
        columns = tuple(row)
        prepared = self._by_columns.get(columns)
        if prepared is None:
            prepared = self._by_columns[columns] = Prepared(insert(self._table), column_keys=columns)
        return prepared.execute(connection, row)
