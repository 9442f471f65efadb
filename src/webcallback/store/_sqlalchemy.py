"""The guard on what `store/prepared.py` reads of SQLAlchemy's internals.

`Prepared` compiles a statement once and then runs it on the driver's cursor itself, so it reads
parts of SQLAlchemy that are not its public execution API: the compiler's `bind_names`,
`positional` and `positiontup`, a bind parameter's `expanding`, `callable`, `required`, `value`
and `type`, the types' bind and result processors, and the pool connection's `driver_connection`.
A release that renamed or reshaped one would not fail: values could go to the wrong placeholders.
`check()`, run when `prepared` is imported (so at start-up), compiles a probe statement for
SQLite and PostgreSQL and compares those with what `prepared` expects, raising
`SqlAlchemyChanged` naming each difference. pyproject bounds SQLAlchemy to the series checked.
"""

from __future__ import annotations

import inspect
from typing import Any

import sqlalchemy
from sqlalchemy import Dialect, Integer, bindparam, column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import ManagesConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

SERIES = ("2.0", "2.1")  # the releases `prepared` was checked against (and pyproject allows)

# TypeEngine method -> its parameter names
PROCESSORS = {
    "dialect_impl": ["self", "dialect"],
    "bind_processor": ["self", "dialect"],
    "result_processor": ["self", "dialect", "coltype"],
}
BIND_ATTRIBUTES = ("expanding", "callable", "required", "value", "key", "type")


class SqlAlchemyChanged(RuntimeError):
    """SQLAlchemy no longer has the shape `store/prepared.py` reads."""


def problems() -> list[str]:
    """What differs from the SQLAlchemy `prepared` was written for; empty when nothing does."""
    found: list[str] = []
    series = ".".join(sqlalchemy.__version__.split(".")[:2])
    if series not in SERIES:
        found.append(f"SQLAlchemy is {sqlalchemy.__version__}, prepared.py was checked on {'/'.join(SERIES)}")
    for name, expected in PROCESSORS.items():
        actual = list(inspect.signature(getattr(TypeEngine, name)).parameters)
        if actual != expected:
            found.append(f"TypeEngine.{name} now takes {actual}, was {expected}")
    if "driver_connection" not in getattr(ManagesConnection, "__annotations__", {}):
        found.append("the pool connection has no driver_connection")
    a = column("a", Integer)
    probe = select(a).where(a == bindparam("x", type_=Integer))
    dialects: list[tuple[Dialect, bool]] = [
        (sqlite.dialect(), True),
        (postgresql.dialect(), False),  # type: ignore[no-untyped-call]  # its __init__ is not annotated
    ]
    for dialect, positional in dialects:
        found += _compiled_problems(probe.compile(dialect=dialect), dialect.name, positional)
    return found


def _compiled_problems(compiled: Any, dialect: str, positional: bool) -> list[str]:
    if not isinstance(compiled, SQLCompiler):
        return [f"{dialect}: a SELECT no longer compiles to an SQLCompiler"]
    names = getattr(compiled, "bind_names", None)
    if not isinstance(names, dict) or [(type(k), v) for k, v in names.items()] != [(BindParameter, "x")]:
        return [f"{dialect}: SQLCompiler.bind_names is not {{BindParameter: name}}: {names!r}"]
    found = []
    if getattr(compiled, "positional", None) is not positional:
        found.append(f"{dialect}: SQLCompiler.positional is {getattr(compiled, 'positional', None)!r}")
    if positional and getattr(compiled, "positiontup", None) != ["x"]:
        found.append(f"{dialect}: SQLCompiler.positiontup is {getattr(compiled, 'positiontup', None)!r}")
    (bind,) = names
    found += [f"BindParameter.{a} is gone" for a in BIND_ATTRIBUTES if not hasattr(bind, a)]
    return found


def check() -> None:
    found = problems()
    if found:
        raise SqlAlchemyChanged("SQLAlchemy changed under store/prepared.py: " + "; ".join(found))
