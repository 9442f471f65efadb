"""Billing fixtures: services on each database, accounts with credit, a rate plan, salted-hash
credentials, and the real app on a loopback port."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from click.testing import CliRunner, Result

from tests.conftest import make_settings
from tests.httpserver import serve as shared_serve
from webcallback.billing.rating import Rate
from webcallback.cli.main import main
from webcallback.service.container import Services, build_services
from webcallback.store.accounts import Account
from webcallback.store.billing import CreditStore, RateStore
from webcallback.web.app import create_app

PASSWORD = "s3cret-pass"
# One password key for the services a test builds and the CLI it runs: the CLI refuses to start
# when the accounts' passwords are under a key it does not hold.
KEY = base64.b64encode(os.urandom(32)).decode()

# A small deck: destinations in the UK (60/60), UK mobiles (30/6 with a fee), US (1/1).
DECK = [
    Rate(prefix="44", price_per_minute=Decimal("0.02"), description="United Kingdom"),
    Rate(
        prefix="447",
        price_per_minute=Decimal("0.10"),
        connection_fee=Decimal("0.05"),
        first_increment=30,
        next_increment=6,
        description="United Kingdom mobile",
    ),
    Rate(
        prefix="1", price_per_minute=Decimal("0.01"), first_increment=1, next_increment=1, description="NANP"
    ),
]
UK_LANDLINE = "+442071234567"
UK_MOBILE = "+447700900123"
US_NUMBER = "+12125551234"


def build(db_url: str, **env: str) -> Services:
    """Services with billing on (the suite-wide `make_settings` turns it off)."""
    return build_services(make_settings(db_url, **{"billing__enabled": "true", "secrets__key": KEY, **env}))


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    svc = build(db_url)
    yield svc
    svc.close()


def add_account(
    svc: Services,
    username: str = "alice",
    credit: str = "10",
    *,
    callback_number: str | None = US_NUMBER,
    plan: str | None = None,
    currency: str = "USD",
) -> Account:
    enc, kid = svc.cipher.encrypt(username, PASSWORD)
    acct = svc.accounts.add(
        username,
        password_enc=enc,
        key_id=kid,
        callback_number=callback_number,
        currency=currency,
        plan=plan,
    )
    if Decimal(credit):
        CreditStore(svc.db).topup(acct.id, Decimal(credit), note="test")
    return svc.accounts.get(username)


def import_deck(
    svc: Services, plan: str = "default", deck: list[Rate] | None = None, currency: str = "USD"
) -> None:
    RateStore(svc.db).import_plan(plan, currency, DECK if deck is None else deck)
    if svc.billing is not None:
        svc.billing.decks.invalidate(plan)


_nonce_counter = itertools.count()


def hash_params(username: str = "alice", password: str = PASSWORD) -> dict[str, str]:
    """username, a fresh nonce and sha1(nonce + password) in hex: the app's salted-hash login."""
    nonce = f"{secrets.token_hex(8)}{next(_nonce_counter)}"
    return {
        "username": username,
        "nonce": nonce,
        "hash": hashlib.sha1((nonce + password).encode()).hexdigest(),
    }


@contextmanager
def serve(svc: Services) -> Iterator[str]:
    """The real ASGI app under uvicorn in a thread on a free loopback port; yields its base URL."""
    with shared_serve(create_app(svc), backlog=1024) as running:
        yield running.url


@pytest.fixture
def cli(db_url: str) -> CliRunner:
    env = {
        "WEBCALLBACK_DATABASE__URL": db_url,
        "WEBCALLBACK_SECRETS__KEY": KEY,
        "WEBCALLBACK_ENGINE__KIND": "none",
        "WEBCALLBACK_BILLING__ENABLED": "true",
    }
    return CliRunner(env=env)


def invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, ["--config", os.devnull, *args], catch_exceptions=False)
