"""The store-backed counters, nonces and slots on SQLite and PostgreSQL, including races between
threads (standing in for nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from webcallback.security.store import SecurityStore
from webcallback.store.accounts import AccountStore
from webcallback.store.db import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def account_id(db: Database) -> int:
    return AccountStore(db).add("alice", password_enc=b"x", key_id="k", balance=Decimal(1)).id


def test_sliding_window_counter(db: Database) -> None:
    store = SecurityStore(db)
    assert [store.hit("k", 60, 1200.0 + i) for i in range(3)] == [1, 2, 3]
    # Half way through the next window, the previous one counts half.
    assert store.peek("k", 60, 1290.0) == pytest.approx(1.5)
    assert store.hit("k", 60, 1290.0) == pytest.approx(2.5)
    assert store.peek("k", 60, 1400.0) == 0
    store.reset("k")
    assert store.peek("k", 60, 1290.0) == 0


def test_counter_increments_are_not_lost_between_nodes(db: Database) -> None:
    store = SecurityStore(db)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: store.hit("race", 3600, 7200.0), range(64)))
    assert store.peek("race", 3600, 7200.0) == 64


def test_lockout_and_unlock(db: Database) -> None:
    store = SecurityStore(db)
    store.hit("fail:user:alice", 900, 1000.0)
    store.lock("user:alice", 1600.0, "5 failed logins", 1000.0)
    assert store.locked_until(["ip:1.2.3.4", "user:alice"], 1100.0) == pytest.approx(1600.0)
    assert store.locked_until(["user:alice"], 1700.0) is None
    assert store.unlock("user:alice")
    assert store.locked_until(["user:alice"], 1100.0) is None
    assert store.peek("fail:user:alice", 900, 1000.0) == 0
    assert not store.unlock("user:alice")


def test_digest_nonce_count_only_goes_up_even_under_races(db: Database) -> None:
    store = SecurityStore(db)
    assert store.use_nonce("n1", 1, 9e9)
    assert not store.use_nonce("n1", 1, 9e9)
    assert store.use_nonce("n1", 3, 9e9)
    assert not store.use_nonce("n1", 2, 9e9)
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda _: store.use_nonce("n2", 1, 9e9), range(16)))
    assert wins.count(True) == 1


@pytest.mark.parametrize("limit", [1, 3])
def test_slots_admit_exactly_the_limit_under_races(db: Database, account_id: int, limit: int) -> None:
    store = SecurityStore(db)

    def take(n: int) -> bool:
        return store.acquire_slot(account_id, limit, f"cb{n}", f"+1202555{n:04d}", "+12025550100", 1000.0)

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(take, range(16)))
    assert wins.count(True) == limit
    winner = wins.index(True)
    store.release_slot(f"cb{winner}")
    assert store.acquire_slot(account_id, limit, "late", "+12025550999", "+12025550100", 1001.0)


def test_orphan_slot_is_reclaimed_after_the_grace(db: Database, account_id: int) -> None:
    store = SecurityStore(db)
    assert store.acquire_slot(account_id, 1, "never-stored", "+1", "+2", 1000.0)
    assert not store.acquire_slot(account_id, 1, "next", "+1", "+2", 1010.0)
    assert store.acquire_slot(account_id, 1, "next", "+1", "+2", 1000.0 + 121)


def test_events_and_registered_numbers(db: Database, account_id: int) -> None:
    store = SecurityStore(db)
    store.add_event("auth-failed", "bad", username="alice", client_ip="::1", detail=None, now=1000.0)
    store.add_event("lockout", "user", username="alice", client_ip="::1", detail="user:alice", now=1001.0)
    assert [e.kind for e in store.events()] == ["lockout", "auth-failed"]
    assert [e.kind for e in store.events(kind="auth-failed")] == ["auth-failed"]
    assert store.register_number(account_id, "+12025550100", 1000.0)
    assert not store.register_number(account_id, "+12025550100", 1000.0)
    assert store.is_registered(account_id, "+12025550100")
    assert store.unregister_number(account_id, "+12025550100")
    assert store.registered(account_id) == []
    store.purge(2_000_000.0, counter_age=60, event_age=10)
    assert store.events() == []


def test_security_settings_are_checked(tmp_path: Path) -> None:
    from tests.conftest import make_settings
    from webcallback.config import ConfigError
    from webcallback.service.container import build_services

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ConfigError, match=r"security\.digest\.algorithms"):
        build_services(make_settings(url, security__digest__algorithms="SHA-512"))
    with pytest.raises(ConfigError, match=r"security\.policy\.refused_types"):
        build_services(make_settings(url, security__policy__refused_types="PREMIUM"))


def test_security_migration_downgrades_and_upgrades(db: Database) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("webcallback.store") / "migrations"))
    tables = {
        "security_counters",
        "security_lockouts",
        "digest_nonces",
        "callback_slots",
        "registered_numbers",
        "security_events",
    }
    assert tables <= set(inspect(db.engine).get_table_names())
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0004_merge_telephony_billing")
    assert not tables & set(inspect(db.engine).get_table_names())
    db.migrate()
    assert tables <= set(inspect(db.engine).get_table_names())
