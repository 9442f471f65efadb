"""Secrets: key rotation without downtime, and no password in logs, errors, `config show`, CDR
exports or tracebacks."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.security.conftest import PASSWORD, MakeLab, params
from webcallback.cli.main import main
from webcallback.domain import Admission
from webcallback.passwords import read_key_file
from webcallback.store.accounts import Account


def test_rotate_key_while_the_server_runs(make_lab: MakeLab, db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    lab = make_lab(db_url, secrets__key_file=str(key_file), auth__allow_password_over_http="true")
    old_kid = lab.services.cipher.current_key_id
    nonce = "rotation-nonce-1"
    with lab.server() as url, httpx.Client(base_url=url) as http:
        assert http.get("/webcallback", params=params(password="wrong")).status_code == 401
        result = lab.cli("security", "rotate-key")
        assert result.exit_code == 0, result.output
        assert "re-encrypted 2 accounts" in result.output
        assert len(read_key_file(key_file)) == 2
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        rows = lab.services.accounts.all()
        assert {a.key_id for a in rows} != {old_kid}
        # The running server meets a key id it does not know, re-reads the key file, and carries on.
        digest = hashlib.sha1((nonce + PASSWORD).encode()).hexdigest()
        query = {**params(password=None), "nonce": nonce, "hash": digest}
        assert http.get("/webcallback", params=query).status_code == 200
        assert PASSWORD not in result.output


def test_rotate_key_stage_then_reencrypt(make_lab: MakeLab, sqlite_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    lab = make_lab(sqlite_url, secrets__key_file=str(key_file))
    first = lab.services.cipher.current_key_id
    staged = lab.cli("security", "rotate-key", "--stage")
    assert staged.exit_code == 0 and "re-encrypted" not in staged.output
    assert {a.key_id for a in lab.services.accounts.all()} == {first}
    done = lab.cli("security", "reencrypt")
    assert "re-encrypted 2 accounts" in done.output and "may be removed" in done.output
    assert first not in {a.key_id for a in lab.services.accounts.all()}


def test_rotate_key_refuses_keys_from_the_environment(make_lab: MakeLab, sqlite_url: str) -> None:
    lab = make_lab(sqlite_url)
    result = lab.cli("security", "rotate-key")
    assert result.exit_code == 1 and "secrets.key" in result.output


def test_no_password_in_logs_or_responses(
    make_lab: MakeLab, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lab = make_lab(db_url, security__lockout__max_failures_per_user="3")
    secret_guess = "Guess-" + PASSWORD[::-1]
    with lab.server() as url, httpx.Client(base_url=url) as http:
        replies = [
            http.get("/webcallback", params=params()),  # password over plain HTTP
            http.get("/webcallback", params=params(password=secret_guess)),
            http.post("/webcallback", json={**params(password=secret_guess), "to": "x"}),
            http.get(
                "/webcallback", params={**params(password=None), "nonce": "n" * 10, "hash": secret_guess}
            ),
            http.get("/webcallback", params=params(password=secret_guess)),
            http.get("/webcallback", params=params()),  # locked out now
            http.get(
                "/webcallback",
                headers={"Authorization": f'Digest username="alice", response="{secret_guess}'},
            ),
            http.get(
                "/webcallback",
                params={"to": "+12025550123"},
                headers={
                    "Authorization": f'Digest username="alice", realm="webcallback", nonce="x", '
                    f'uri="/webcallback?to=%2B12025550123", response="{secret_guess}", qop=auth, '
                    'nc=00000001, cnonce="c", algorithm=MD5'
                },
            ),
        ]
    assert {r.status_code for r in replies} <= {400, 401, 403, 429}
    for reply in replies:
        assert PASSWORD not in reply.text and secret_guess not in reply.text
    # The server's records (the test's own httpx client logs its URLs, passwords included).
    server = [r for r in caplog.records if r.name.startswith(("webcallback", "uvicorn", "starlette"))]
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in server)
    assert "auth-failed" in logged  # the failures were logged ...
    assert PASSWORD not in logged and secret_guess not in logged  # ... without the secrets
    events = lab.cli("security", "events", "--json").output
    assert PASSWORD not in events and secret_guess not in events


def test_no_password_in_a_traceback(
    make_lab: MakeLab, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error is logged with its traceback; the request's password is not in it."""
    lab = make_lab(sqlite_url, auth__allow_password_over_http="true")

    class Exploding:
        async def admit(
            self, account: Account, destination: str, callback: str, callback_id: str
        ) -> Admission:
            raise RuntimeError("credit backend fell over")

    lab.services.callback_service._credit = Exploding()
    with caplog.at_level(logging.ERROR), lab.server() as url:
        reply = httpx.get(url + "/webcallback", params=params())
    assert reply.status_code == 500 and PASSWORD not in reply.text
    text = "\n".join(
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    assert "credit backend fell over" in text
    assert PASSWORD not in text


def test_config_show_and_cdr_export_hide_secrets(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, auth__allow_password_over_http="true", engine__sip__password="trunk-Secret-99")
    with lab.server() as url:
        assert httpx.get(url + "/webcallback", params=params()).status_code == 200
    env = {**lab.env, "WEBCALLBACK_DATABASE__URL": "postgresql://cb:db-Secret-7@db.example:5432/cb"}
    shown = CliRunner().invoke(main, ["config", "show"], env=env).output
    assert "[security.lockout]" in shown and "cb:**********@db.example" in shown
    for secret in ("db-Secret-7", "trunk-Secret-99", lab.env["WEBCALLBACK_SECRETS__KEY"]):
        assert secret not in shown
    exported = lab.cli("calls", "list", "--json").output
    assert json.loads(exported) and PASSWORD not in exported
    assert PASSWORD not in lab.cli("account", "show", "alice").output
