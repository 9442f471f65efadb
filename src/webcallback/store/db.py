"""The database handle: one SQLAlchemy engine, migrations applied on start, and `run()` to call the
synchronous store code from asyncio.

Why synchronous SQLAlchemy Core: an indexed SQLite statement costs a few microseconds in process,
while a thread hop costs ~90 µs (research/stack.md), so on SQLite the store runs inline on the event
loop. PostgreSQL round trips are slower, so there `run()` hands the call to a small thread pool
sized like the connection pool. The same store code serves both.

Store code opens its connections with `db.begin()` / `db.connect()`. Inside `db.unit()` (SQLite
only) those hand out one connection in one transaction, committed once at the end: the web
callback path makes about ten store calls, and a commit per call was a large share of its cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

POOL_SIZE = 8
CHECKPOINT_EVERY = 1.0  # seconds, when the service checkpoints the SQLite WAL in the background


class StoreError(Exception):
    """The database is unreachable or misbehaved."""


# What an unreachable, full, locked or restarting database raises (through SQLAlchemy or straight
# from the driver): an outage, answered 503 and retried, as opposed to a bug (IntegrityError,
# ProgrammingError), which stays an error.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy_exc.OperationalError,
    sqlalchemy_exc.InterfaceError,
    sqlalchemy_exc.DisconnectionError,
    sqlalchemy_exc.TimeoutError,
    sqlite3.OperationalError,
    StoreError,
)


def outage_summary(exc: BaseException) -> str:
    """One line naming an outage for the log: the driver's own message, never the statement or
    its parameters (SQLAlchemy's `str()` includes both, and they can hold account data)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first[:200]}"


class SchemaNotCurrent(StoreError):
    """The database's schema is older (or newer) than this version's: `webcallback db upgrade`."""


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here; relative SQLite paths stay relative to the cwd."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class _Unit:
    """The connection of an open `Database.unit()`. `open` goes False when the unit ends, for the
    tasks that were started inside it and inherited its context."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.transaction = connection.begin()
        self.open = True


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
        self._unit: ContextVar[_Unit | None] = ContextVar(f"db-unit-{id(self)}", default=None)
        self._sqlite_path = parsed.database if self.is_sqlite else None
        self._checkpointer: _Checkpointer | None = None
        # Told the operation and the seconds of every `run()` (the store-latency metric).
        self.observe: Callable[[str, float], None] | None = None
        # When a store call last failed with an outage error (monotonic seconds): what `/readyz`
        # reads, since a full disk shows only on a write, not on a probe.
        self.last_outage: float | None = None

    def note_outage(self) -> None:
        self.last_outage = time.monotonic()

    def outage_within(self, seconds: float) -> bool:
        return self.last_outage is not None and time.monotonic() - self.last_outage < seconds

    def probe(self) -> None:
        """Raise an outage error unless the database answers and takes writes (a PostgreSQL
        standby, e.g. after a failover that left us on the old primary, answers read-only)."""
        with self.engine.connect() as connection:
            if self.is_sqlite:
                connection.exec_driver_sql("SELECT 1").scalar()
            elif connection.exec_driver_sql("SELECT pg_is_in_recovery()").scalar():
                raise StoreError("the PostgreSQL server is a read-only standby")

    @staticmethod
    def _sqlite_engine(path: str | None) -> Engine:
        if path and path != ":memory:":
            if not Path(path).exists():
                # Said out loud: a relative path or a wrong --config silently made a second database.
                log.warning("database %s does not exist: creating a new, empty one", Path(path).resolve())
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path or ':memory:'}", connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent): `webcallback db upgrade`."""
        cfg = _alembic_config()
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    def revisions(self) -> tuple[str | None, str]:
        """(the database's schema revision, None when it has no schema yet; this version's head)."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        assert head is not None  # the package ships its migrations
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        return current, head

    @staticmethod
    def knows(revision: str) -> bool:
        script = ScriptDirectory.from_config(_alembic_config())
        return any(r.revision == revision for r in script.walk_revisions())

    def prepare(self) -> None:
        """What every command does on start: an empty database gets the schema (nothing to lose);
        one at another revision is refused, so that upgrading the schema is an explicit step
        (`webcallback db upgrade`) taken after a backup, not a side effect of `account list`."""
        current, head = self.revisions()
        if current is None:
            self.migrate()
        elif not self.knows(current):
            raise SchemaNotCurrent(
                f"the database schema is at revision {current}, which this version of webcallback "
                f"does not know (its newest is {head}): a newer webcallback upgraded it"
            )
        elif current != head:
            raise SchemaNotCurrent(
                f"the database schema is at revision {current}, this version of webcallback needs "
                f"{head}: back the database up, then run `webcallback db upgrade`"
            )

    def _open_unit(self) -> _Unit | None:
        unit = self._unit.get()
        return unit if unit is not None and unit.open else None

    def begin(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection in a transaction committed on leaving the block (the unit's, if open)."""
        unit = self._open_unit()
        return contextlib.nullcontext(unit.connection) if unit else self.engine.begin()

    def connect(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for reads (the unit's, if open, so reads see its writes)."""
        unit = self._open_unit()
        return contextlib.nullcontext(unit.connection) if unit else self.engine.connect()

    @contextlib.contextmanager
    def unit(self, keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """On SQLite, run every store call of the block in one transaction on one connection.

        Committed when the block ends normally or by one of `keep_on` (e.g. a refusal whose
        writes — a claimed nonce, a counted failure — must stay); rolled back by any other
        exception. On PostgreSQL (store calls in a thread pool) and when already inside a unit
        this does nothing. The block must not wait on the event loop after its first write: SQLite
        holds the write lock until the commit (see `commit_unit`)."""
        if not self.is_sqlite or self._open_unit() is not None:
            yield
            return
        with self.engine.connect() as connection:
            unit = _Unit(connection)
            token = self._unit.set(unit)
            try:
                yield
            except keep_on:
                unit.transaction.commit()
                raise
            except BaseException:
                unit.transaction.rollback()
                raise
            else:
                unit.transaction.commit()
            finally:
                unit.open = False
                self._unit.reset(token)

    def commit_unit(self) -> None:
        """Commit what the open unit wrote so far and go on in a new transaction: called before
        waiting on the event loop inside a unit, so that other requests can write meanwhile."""
        unit = self._open_unit()
        if unit is not None:
            unit.transaction.commit()
            unit.transaction = unit.connection.begin()

    # ---- SQLite WAL checkpoints -------------------------------------------------------------

    def start_checkpointer(self, every: float = CHECKPOINT_EVERY) -> None:
        """Checkpoint the SQLite WAL from a thread instead of inside commits.

        By default SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: one
        request in ~100 then waits milliseconds (97 ms seen) on the event loop. The service turns
        that off on its own connections and checkpoints every `every` seconds in a thread, which
        does not hold the GIL while SQLite copies pages. Other processes on the file (the CLI)
        keep SQLite's default. No-op on PostgreSQL and in-memory SQLite."""
        if self._checkpointer is not None or not self._sqlite_path or self._sqlite_path == ":memory:":
            return
        event.listen(self.engine, "checkout", _no_autocheckpoint)
        self._checkpointer = _Checkpointer(self._sqlite_path, every)
        self._checkpointer.start()

    def stop_checkpointer(self) -> None:
        if self._checkpointer is not None:
            event.remove(self.engine, "checkout", _no_autocheckpoint)
            self._checkpointer.stop()
            self._checkpointer = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        started = time.perf_counter()
        try:
            if self._executor is None:
                return fn(*args, **kwargs)
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)  # the callback id
            return await loop.run_in_executor(self._executor, call)
        except OUTAGE_ERRORS:
            self.note_outage()
            raise
        finally:
            if self.observe is not None:
                self.observe(getattr(fn, "__qualname__", "other"), time.perf_counter() - started)

    def close(self) -> None:
        self.stop_checkpointer()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.engine.dispose()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("webcallback.store") / "migrations"))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while the service writes; NORMAL skips an fsync per commit (WAL keeps
    # it durable against a process crash); busy_timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _no_autocheckpoint(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if not record.info.get("no_autocheckpoint"):
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
        record.info["no_autocheckpoint"] = True


class _Checkpointer:
    """A thread with its own connection running a PASSIVE checkpoint (never blocks writers or
    readers) every `every` seconds; a last one on stop."""

    def __init__(self, path: str, every: float) -> None:
        self._path = path
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint", daemon=True)
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        connection = sqlite3.connect(self._path, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=5000")
            while True:
                stopping = self._stop.wait(self._every)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # e.g. busy: the next round catches up
                    log.warning("WAL checkpoint of %s failed", self._path, exc_info=True)
                if stopping:
                    return
        finally:
            connection.close()
