"""The database handle: one SQLAlchemy engine, migrations applied on start, and `run()` to call the
synchronous store code from asyncio.

Why synchronous SQLAlchemy Core: an indexed SQLite statement costs a few microseconds in process,
while a thread hop costs ~90 µs (research/stack.md), so on SQLite the store runs inline on the event
loop. PostgreSQL round trips are slower, so there `run()` hands the call to a small thread pool
sized like the connection pool. The same store code serves both.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

P = ParamSpec("P")
T = TypeVar("T")

POOL_SIZE = 8


class StoreError(Exception):
    """The database is unreachable or misbehaved."""


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here; relative SQLite paths stay relative to the cwd."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """Owns the engine. `is_sqlite` decides how `run()` executes store calls."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._executor: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            self.engine = self._sqlite_engine(parsed.database)
        else:
            self.engine = create_engine(self.url, pool_size=POOL_SIZE, max_overflow=0, pool_pre_ping=True)
            self._executor = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="db")

    @staticmethod
    def _sqlite_engine(path: str | None) -> Engine:
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path or ':memory:'}", connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(resources.files("webcallback.store") / "migrations"))
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while the service writes; NORMAL skips an fsync per commit (WAL keeps
    # it durable against a process crash); busy_timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
