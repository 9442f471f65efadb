"""The store calls on the API's hot path give exactly what a read-back gives (bench/ optimises them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.conftest import make_settings
from webcallback.service.container import Services, build_services


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    built = build_services(make_settings(db_url))
    yield built
    built.close()


def _account_id(services: Services) -> int:
    blob, kid = services.cipher.encrypt("alice", "pw")
    return services.accounts.add("alice", password_enc=blob, key_id=kid, balance=Decimal(5)).id


@pytest.mark.parametrize("max_duration", [None, 90, 12.5])
def test_create_returns_what_a_read_back_gives(services: Services, max_duration: float | None) -> None:
    account_id = _account_id(services)
    created = services.callbacks.create(
        account_id=account_id,
        username="alice",
        destination="+15551231234",
        callback="+15559876543",
        client_ip="203.0.113.7",
        country=None,
        max_duration=max_duration,
    )
    stored = services.callbacks.get(created.id)
    assert created == stored
    assert created.as_dict() == stored.as_dict()
    assert type(created.max_duration) is type(stored.max_duration)


def test_create_without_optional_columns(services: Services) -> None:
    created = services.callbacks.create(username="bob", destination="+15551231234", callback="+15559876543")
    assert created == services.callbacks.get(created.id)
    assert created.state == "queued" and created.account_id is None and created.reason is None


def test_create_keeps_a_given_id(services: Services) -> None:
    cid = os.urandom(8).hex()
    created = services.callbacks.create(id=cid, username="bob", destination="+1555", callback="+1556")
    assert created.id == cid == services.callbacks.get(cid).id


def test_find_account(services: Services) -> None:
    account_id = _account_id(services)
    found = services.accounts.find("alice")
    assert found is not None and found.id == account_id and found.balance == Decimal(5)
    assert services.accounts.find("nobody") is None


def test_nonce_is_claimed_once_per_account(services: Services) -> None:
    account_id = _account_id(services)
    nonces = services.authenticator._nonces
    assert nonces.claim(account_id, "n-0001") is True
    assert nonces.claim(account_id, "n-0001") is False
    assert nonces.claim(account_id, "n-0002") is True


def test_create_refuses_unknown_columns(services: Services) -> None:
    with pytest.raises(Exception, match=r"(?i)unconsumed column names"):
        services.callbacks.create(username="bob", destination="+1555", callback="+1556", colour="red")
