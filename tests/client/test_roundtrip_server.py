"""Round trips: `provision xml` → Account XML → the app-exact client → the REAL webcallback server.

The server is `webcallback.web.app.create_app` under uvicorn on 127.0.0.1 (engine `none`: it
accepts and queues, nobody is dialled), once over https with a self-signed certificate made by the test,
once over plain http. Accounts are created with the real `webcallback account add` command.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.httpserver import self_signed, serve
from webcallback.cli.main import main
from webcallback.client import CallbackResult, Options, build_request, load_account, normalize_number, send
from webcallback.config import load_settings
from webcallback.service.container import build_services
from webcallback.web.app import create_app

FORMATS = ["get", "form", "json", "xml"]


@dataclass
class RealServer:
    config: Path
    base_url: str
    verify: ssl.SSLContext | bool
    cacert: Path | None

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(self.config), *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    def account_file(self, directory: Path, auth: str, fmt: str, password: str | None = "pw") -> Path:
        path = directory / f"account-{auth}-{fmt}.xml"
        extra = ["--password", password] if password is not None else []
        self.cli(
            "provision", "xml", "john", "--auth", auth, "--format", fmt, "--account-file", str(path),
            "--callback-number", "+15559879876", *extra,
        )  # fmt: skip
        return path

    def call(
        self, account: Path, number: str = "+1 (555) 123-1234", nonce: str | None = None
    ) -> CallbackResult:
        request = build_request(load_account(account), normalize_number(number), Options(nonce=nonce))
        with httpx.Client(verify=self.verify, trust_env=False) as http:
            return send(http, request)


@contextmanager
def running_server(directory: Path, tls: bool) -> Iterator[RealServer]:
    """The real app on loopback (shared `tests.httpserver.serve`); the config file is then completed
    with the server's public URL, for `provision xml`."""
    config = directory / "webcallback.toml"
    base = [
        "[database]",
        f'url = "sqlite:///{directory / "webcallback.db"}"',
        "[secrets]",
        f'key = "{base64.b64encode(os.urandom(32)).decode()}"',
        "[engine]",
        'kind = "none"',
        "[numbers]",
        "geoip = false",
        "[billing]",  # the protocol is under test here, not the rating (tests/billing does that)
        "enabled = false",
        # The security controls off, as in `tests.conftest.make_settings` (tests/security tests them).
        "[security.policy]",
        'refused_types = ["PREMIUM_RATE", "SHARED_COST", "UAN", "PERSONAL_NUMBER"]',
        "[security.limits]",
        "requests_per_minute_per_user = 0",
        "requests_per_minute_per_ip = 0",
        "concurrent_callbacks_per_user = 0",
        "callbacks_per_day = 0",
        "duplicate_window = 0",
        "[security.lockout]",
        "max_failures_per_user = 0",
        "max_failures_per_ip = 0",
    ]
    config.write_text("\n".join(base) + "\n")
    services = build_services(load_settings(config))
    certificate = self_signed(directory) if tls else None
    try:
        with serve(create_app(services), certificate=certificate) as running:
            config.write_text("\n".join(["[server]", f'public_url = "{running.url}"', *base]) + "\n")
            cacert = certificate.cert if certificate else None
            verify = ssl.create_default_context(cafile=str(cacert)) if cacert else True
            real = RealServer(config, running.url, verify, cacert)
            real.cli(
                "account",
                "add",
                "john",
                "--password",
                "pw",
                "--callback-number",
                "+15559879876",
                "--credit=5",
            )
            yield real
    finally:
        services.close()


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    with running_server(tmp_path_factory.mktemp("https"), tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    with running_server(tmp_path_factory.mktemp("http"), tls=False) as server:
        yield server


@pytest.mark.parametrize("fmt", FORMATS)
def test_password_over_https(https_server: RealServer, tmp_path: Path, fmt: str) -> None:
    result = https_server.call(https_server.account_file(tmp_path, "password", fmt))
    assert result.ok, (result.status, result.message)
    assert result.callback_id


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("server_name", ["http_server", "https_server"])
def test_nonce_sha1(request: pytest.FixtureRequest, server_name: str, tmp_path: Path, fmt: str) -> None:
    server: RealServer = request.getfixturevalue(server_name)
    result = server.call(server.account_file(tmp_path, "nonce-sha1", fmt))
    assert result.ok, (result.status, result.message)
    assert result.callback_id


def test_nonce_replay_is_refused(http_server: RealServer, tmp_path: Path) -> None:
    account = http_server.account_file(tmp_path, "nonce-sha1", "form")
    assert http_server.call(account, nonce="fixed-nonce-1").ok
    replay = http_server.call(account, nonce="fixed-nonce-1")
    assert (replay.ok, replay.source) == (False, "message")
    assert replay.message == "This request was already used."


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_password_message_reaches_the_user(https_server: RealServer, tmp_path: Path, fmt: str) -> None:
    result = https_server.call(https_server.account_file(tmp_path, "password", fmt, password="wrong"))
    assert not result.ok and result.status in (401, 403)
    assert result.source == "message" and result.message


def test_password_over_http_is_masked_and_refused(http_server: RealServer, tmp_path: Path) -> None:
    account = http_server.account_file(tmp_path, "password", "json")
    request = build_request(load_account(account), "+15551231234")
    assert b'"password" : "****"' in request.body  # the app's guard: no password over http
    result = http_server.call(account)
    assert (result.ok, result.message) == (False, "Passwords are accepted only over HTTPS.")


def test_cli_check_against_the_real_server(https_server: RealServer, tmp_path: Path) -> None:
    account = https_server.account_file(tmp_path, "nonce-sha1", "json")
    args = [
        "client",
        "check",
        "+15551231234",
        "--account",
        str(account),
        "--cacert",
        str(https_server.cacert),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3. the app shows: waiting for call" in result.stdout
    assert "4. callback id " in result.stdout
