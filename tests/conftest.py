"""Fixtures shared by the whole suite: databases (SQLite file and a real PostgreSQL), settings,
services, and a real HTTP server on loopback."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.pgserver import PostgresServer, postgres_server
from webcallback.config import Settings, load_settings

# Hypothesis' per-example deadline (200 ms) measures the machine, not the property: on a busy host
# an example is slow and the test fails. Off for the whole suite; speed is measured in bench/.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")

# What `make test-quick` leaves out (`-m "not slow"`): tests that start SIP peers or engines,
# PostgreSQL, or `webcallback run` and other child processes, and the long fuzzing runs. Marked here
# by the markers and fixtures they use, and by folder (tests/sip, tests/e2e); a test that starts a
# child by itself carries `children`, a test that takes many seconds by design carries `long`.
SLOW_MARKERS = {"sip", "postgres", "children", "long"}
SLOW_FIXTURES = {"pg_server", "sip_listen", "kamailio_port", "baresip", "phones"}

SLOW_FOLDERS = {"sip", "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        fixtures = set(getattr(item, "fixturenames", ()))
        folder = Path(str(item.path)).parent.name
        if marks & SLOW_MARKERS or fixtures & SLOW_FIXTURES or folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'webcallback.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'webcallback.db'}"


# The security controls off, for tests of other parts (see `make_settings`).
RELAXED_SECURITY = {
    "WEBCALLBACK_SECURITY__POLICY__REFUSED_TYPES": "PREMIUM_RATE,SHARED_COST,UAN,PERSONAL_NUMBER",
    "WEBCALLBACK_SECURITY__LOCKOUT__MAX_FAILURES_PER_USER": "0",
    "WEBCALLBACK_SECURITY__LOCKOUT__MAX_FAILURES_PER_IP": "0",
    "WEBCALLBACK_SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_USER": "0",
    "WEBCALLBACK_SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_IP": "0",
    "WEBCALLBACK_SECURITY__LIMITS__CONCURRENT_CALLBACKS_PER_USER": "0",
    "WEBCALLBACK_SECURITY__LIMITS__CALLBACKS_PER_DAY": "0",
    "WEBCALLBACK_SECURITY__LIMITS__DUPLICATE_WINDOW": "0",
}


def make_settings(db_url: str, **env: str) -> Settings:
    """Settings as the service would load them from the environment, with a fresh key. Billing is
    off unless a test turns it on (`billing__enabled="true"`): with it on, every call needs a rate
    plan, which tests of other parts have no reason to set up. Likewise the abuse limits and
    lockouts are off and the number policy admits unrecognised numbers (the seed's own
    +1 555 123 1234 is one): tests of other parts place many callbacks for one account from one
    address. `tests/security` tests the defaults."""
    environ = {
        "WEBCALLBACK_DATABASE__URL": db_url,
        "WEBCALLBACK_SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(),
        "WEBCALLBACK_ENGINE__KIND": "none",
        "WEBCALLBACK_BILLING__ENABLED": "false",
        **RELAXED_SECURITY,
    }
    environ.update({f"WEBCALLBACK_{k.upper()}": v for k, v in env.items()})
    return load_settings(path=os.devnull, environ=environ)
