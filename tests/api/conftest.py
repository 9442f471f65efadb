from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.httpserver import Certificate, RunningServer, self_signed, serve
from webcallback.service.container import Services, build_services
from webcallback.web.app import create_app

PASSWORD = "S3cret"


def salted(nonce: str, password: str = PASSWORD) -> str:
    return hashlib.sha1((nonce + password).encode()).hexdigest()


def fresh_nonce() -> str:
    return secrets.token_hex(8)


def add_account(services: Services, username: str = "alice", **values: object) -> None:
    enc, kid = services.cipher.encrypt(username, str(values.pop("password", PASSWORD)))
    fields: dict[str, object] = {
        "callback_number": "+15559879876",
        "region": "US",
        "balance": Decimal(5),
    }
    fields.update(values)
    services.accounts.add(username, password_enc=enc, key_id=kid, **fields)  # type: ignore[arg-type]  # test overrides, any field


@pytest.fixture
def env() -> dict[str, str]:
    """Extra settings for the services, as WEBCALLBACK_ env names without the prefix."""
    return {}


@pytest.fixture
def services(db_url: str, env: dict[str, str]) -> Iterator[Services]:
    built = build_services(make_settings(db_url, **env))
    add_account(built)
    yield built
    built.close()


@pytest.fixture
def server(services: Services) -> Iterator[RunningServer]:
    with serve(create_app(services)) as running:
        yield running


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(services: Services, certificate: Certificate) -> Iterator[RunningServer]:
    with serve(create_app(services), certificate=certificate) as running:
        yield running


def file_of(path: Path) -> str:
    return path.read_text()
