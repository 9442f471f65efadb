"""The security suite's lab: settings from an environment (shared with the CLI), two accounts, and
the real app served by uvicorn on a free loopback port (plain or TLS), talked to with httpx."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from tests.httpserver import self_signed as shared_self_signed
from tests.httpserver import serve as shared_serve
from webcallback.cli.main import main
from webcallback.config import Settings, load_settings
from webcallback.service.container import Services, build_services
from webcallback.web.app import create_app

PASSWORD = "s3cret-Pa55word"
DEST = "+12025550123"
CALLBACK = "+12025550124"
PREMIUM = "+19005550199"


@contextmanager
def serve(app: Any, *, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run `app` with uvicorn in a thread; yield its base URL."""
    with shared_serve(app, ssl_context=ssl_context) as running:
        yield running.url


class Lab:
    """Settings built from an environment the CLI can share, services, and two accounts."""

    def __init__(self, db_url: str, tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            "WEBCALLBACK_DATABASE__URL": db_url,
            "WEBCALLBACK_SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(),
            "WEBCALLBACK_ENGINE__KIND": "none",
            "WEBCALLBACK_NUMBERS__GEOIP": "false",
            # Billing (rates, reservations) has its own suite; here a positive balance admits.
            "WEBCALLBACK_BILLING__ENABLED": "false",
        }
        self.env.update({f"WEBCALLBACK_{k.upper()}": v for k, v in env.items()})
        if "WEBCALLBACK_SECRETS__KEY_FILE" in self.env:
            del self.env["WEBCALLBACK_SECRETS__KEY"]
        self.settings: Settings = load_settings(path=os.devnull, environ=self.env)
        self.services: Services = build_services(self.settings)
        for name in ("alice", "bob"):
            self.add_account(name)

    def add_account(self, name: str, **values: Any) -> None:
        enc, kid = self.services.cipher.encrypt(name, PASSWORD)
        self.services.accounts.add(
            name, password_enc=enc, key_id=kid, balance=Decimal(100), callback_number=CALLBACK, **values
        )

    @contextmanager
    def server(self, *, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
        with serve(create_app(self.services), ssl_context=ssl_context) as url:
            yield url

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=self.env, catch_exceptions=False)

    def close(self) -> None:
        self.services.close()


MakeLab = Callable[..., Lab]  # make_lab(db_url, **settings): a Lab, closed after the test


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[MakeLab]:
    labs: list[Lab] = []

    def make(db_url: str, **env: str) -> Lab:
        lab = Lab(db_url, tmp_path, **env)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()


def params(user: str = "alice", password: str | None = PASSWORD, **extra: str) -> dict[str, str]:
    out = {"targetNumber": DEST, "callbackNumber": CALLBACK, "username": user}
    if password is not None:
        out["password"] = password
    out.update(extra)
    return out


def self_signed(tmp_path: Path, name: str = "localhost") -> tuple[Path, Path, x509.Certificate]:
    """A self-signed certificate for 127.0.0.1 and its key, written as PEM files."""
    made = shared_self_signed(tmp_path, name)
    return made.cert, made.key, x509.load_pem_x509_certificate(made.cert.read_bytes())


def client_context(cafile: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    return ctx


def get(url: str, path: str = "/webcallback", **kw: Any) -> httpx.Response:
    return httpx.get(url + path, timeout=10, **kw)
