"""`Database.unit()`: on SQLite, the store calls of one request share one transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from webcallback.errors import Forbidden
from webcallback.store.accounts import AccountStore
from webcallback.store.db import Database
from webcallback.store.nonces import NonceStore


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'unit.db'}")
    database.migrate()
    yield database
    database.close()


def _account(db: Database) -> int:
    return AccountStore(db).add("alice", password_enc=b"x", key_id="k").id


def _nonces_seen_from_outside(db: Database) -> int:
    """Count nonce rows through a connection of its own, as another process would."""
    other = sa.create_engine(db.url)
    try:
        with other.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM used_nonces")).scalar_one())
    finally:
        other.dispose()


def test_writes_inside_a_unit_are_committed_once_at_its_end(sqlite_db: Database) -> None:
    account_id, nonces = _account(sqlite_db), NonceStore(sqlite_db)
    with sqlite_db.unit():
        assert nonces.claim(account_id, "n1") and nonces.claim(account_id, "n2")
        assert _nonces_seen_from_outside(sqlite_db) == 0
        # A refused claim (primary key) does not spoil the transaction.
        assert not nonces.claim(account_id, "n1")
        assert nonces.claim(account_id, "n3")
    assert _nonces_seen_from_outside(sqlite_db) == 3


def test_a_listed_refusal_keeps_the_writes_and_anything_else_undoes_them(sqlite_db: Database) -> None:
    account_id, nonces = _account(sqlite_db), NonceStore(sqlite_db)
    with pytest.raises(Forbidden), sqlite_db.unit(keep_on=(Forbidden,)):
        nonces.claim(account_id, "kept")
        raise Forbidden("no")
    with pytest.raises(RuntimeError), sqlite_db.unit(keep_on=(Forbidden,)):
        nonces.claim(account_id, "undone")
        raise RuntimeError("bug")
    assert _nonces_seen_from_outside(sqlite_db) == 1
    assert not nonces.claim(account_id, "kept") and nonces.claim(account_id, "undone")


def test_commit_unit_publishes_what_was_written_so_far(sqlite_db: Database) -> None:
    account_id, nonces = _account(sqlite_db), NonceStore(sqlite_db)
    with sqlite_db.unit():
        nonces.claim(account_id, "early")
        sqlite_db.commit_unit()
        assert _nonces_seen_from_outside(sqlite_db) == 1
        nonces.claim(account_id, "late")
    assert _nonces_seen_from_outside(sqlite_db) == 2


def test_a_task_started_inside_a_unit_does_not_use_it_after_it_ended(sqlite_db: Database) -> None:
    account_id, nonces = _account(sqlite_db), NonceStore(sqlite_db)

    async def main() -> bool:
        release = asyncio.Event()

        async def later() -> bool:
            await release.wait()
            return nonces.claim(account_id, "from-the-task")

        with sqlite_db.unit():
            task = asyncio.create_task(later())  # inherits the unit's context
        release.set()
        return await task

    assert asyncio.run(main())
    assert _nonces_seen_from_outside(sqlite_db) == 1


def test_a_unit_inside_a_unit_joins_it(sqlite_db: Database) -> None:
    account_id, nonces = _account(sqlite_db), NonceStore(sqlite_db)
    with sqlite_db.unit():
        with sqlite_db.unit():
            nonces.claim(account_id, "inner")
        assert _nonces_seen_from_outside(sqlite_db) == 0
    assert _nonces_seen_from_outside(sqlite_db) == 1


def test_the_service_checkpoints_the_wal_from_a_thread(sqlite_db: Database) -> None:
    account_id, nonces = _account(sqlite_db), NonceStore(sqlite_db)
    main_file = Path(str(sqlite_db.engine.url.database))
    sqlite_db.start_checkpointer(every=0.05)
    try:
        with sqlite_db.connect() as conn:  # SQLite's own checkpoints are off on our connections
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        time.sleep(0.2)
        before = main_file.stat().st_size
        with sqlite_db.unit():  # far fewer pages than SQLite's own 1,000-page checkpoint
            for i in range(3000):
                nonces.claim(account_id, f"nonce-{i:06d}")
        # New pages reach the main file only through a checkpoint: ours, from the thread.
        deadline = time.monotonic() + 10
        while main_file.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert main_file.stat().st_size > before
    finally:
        sqlite_db.stop_checkpointer()
    assert _nonces_seen_from_outside(sqlite_db) == 3000


def test_on_postgresql_a_unit_changes_nothing(db: Database) -> None:
    account_id, nonces = _account(db), NonceStore(db)
    with db.unit():
        nonces.claim(account_id, "n", datetime.now(UTC))
        assert _nonces_seen_from_outside(db) == (0 if db.is_sqlite else 1)
    assert _nonces_seen_from_outside(db) == 1
