"""The store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import base64
import os
from decimal import Decimal

import pytest
import sqlalchemy as sa

from webcallback.config import SecretSettings
from webcallback.passwords import PasswordCipher, SecretKeyError, load_cipher
from webcallback.store.accounts import AccountExists, AccountStore, NoSuchAccount
from webcallback.store.callbacks import DIALING, FAILED, QUEUED, CallbackStore
from webcallback.store.db import Database
from webcallback.store.nonces import NonceStore


def test_migrations_are_idempotent(db: Database) -> None:
    db.migrate()
    tables = set(sa.inspect(db.engine).get_table_names())
    assert {"accounts", "used_nonces", "callbacks", "alembic_version"} <= tables


def test_account_lifecycle(db: Database) -> None:
    store = AccountStore(db)
    acct = store.add(
        "alice", password_enc=b"x", key_id="k", callback_number="+15559879876", balance=Decimal("5.5")
    )
    assert acct.balance == Decimal("5.5") and acct.enabled and acct.created_at.tzinfo is not None
    with pytest.raises(AccountExists):
        store.add("alice", password_enc=b"x", key_id="k")
    assert store.update("alice", enabled=False, region="GB").region == "GB"
    assert [a.username for a in store.all()] == ["alice"]
    assert "password_enc" not in store.get("alice").public()
    store.delete("alice")
    with pytest.raises(NoSuchAccount):
        store.get("alice")


def test_nonce_is_claimed_once(db: Database) -> None:
    acct = AccountStore(db).add("alice", password_enc=b"x", key_id="k")
    nonces = NonceStore(db)
    assert nonces.claim(acct.id, "n-1") is True
    assert nonces.claim(acct.id, "n-1") is False
    assert nonces.forget_older_than(-1) == 1  # everything is older than "one second in the future"
    assert nonces.claim(acct.id, "n-1") is True


def test_callback_states(db: Database) -> None:
    acct = AccountStore(db).add("alice", password_enc=b"x", key_id="k")
    store = CallbackStore(db)
    cb = store.create(account_id=acct.id, username="alice", destination="+1", callback="+2")
    assert cb.state == QUEUED
    claimed = store.claim_queued("node-a", 10)
    assert [c.id for c in claimed] == [cb.id] and claimed[0].node == "node-a"
    assert store.claim_queued("node-b", 10) == []  # already taken
    assert store.count_in_flight(acct.id) == 1
    assert store.transition(cb.id, DIALING, FAILED, reason="destination-busy")
    assert not store.transition(cb.id, DIALING, FAILED)  # a state moves once
    done = store.get(cb.id)
    assert done.state == FAILED and done.ended_at is not None and done.reason == "destination-busy"
    assert store.count_in_flight(acct.id) == 0


def test_password_cipher_round_trip_and_binding() -> None:
    key = os.urandom(32)
    cipher = PasswordCipher([key])
    blob, kid = cipher.encrypt("alice", "S3cret")
    assert b"S3cret" not in blob
    assert cipher.decrypt("alice", blob, kid) == "S3cret"
    with pytest.raises(SecretKeyError):
        cipher.decrypt("bob", blob, kid)  # the username is bound as associated data


def test_rotation_old_key_still_decrypts() -> None:
    old, new = os.urandom(32), os.urandom(32)
    blob, kid = PasswordCipher([old]).encrypt("alice", "pw")
    rotated = PasswordCipher([new, old])
    assert rotated.decrypt("alice", blob, kid) == "pw"
    assert rotated.encrypt("alice", "pw")[1] != kid


def test_key_file_is_created_private(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "var" / "secret.key"
    cipher = load_cipher(SecretSettings(key=None, key_file=str(path)))
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_cipher(SecretSettings(key=None, key_file=str(path)))
    assert again.current_key_id == cipher.current_key_id
    assert len(base64.b64decode(path.read_text().strip())) == 32


async def test_housekeeping_forgets_old_nonces(sqlite_url: str) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from tests.conftest import make_settings
    from webcallback.service.container import build_services
    from webcallback.service.maintenance import prune_nonces_forever

    services = build_services(make_settings(sqlite_url, auth__nonce_window="60"))
    acct = services.accounts.add("alice", password_enc=b"x", key_id="k")
    nonces = NonceStore(services.db)
    nonces.claim(acct.id, "old", now=datetime.now(UTC) - timedelta(seconds=120))
    nonces.claim(acct.id, "new")
    task = asyncio.create_task(prune_nonces_forever(services, every=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    assert nonces.claim(acct.id, "old") is True  # forgotten
    assert nonces.claim(acct.id, "new") is False  # still remembered
    services.close()
