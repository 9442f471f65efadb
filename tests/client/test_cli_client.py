"""`webcallback client call|check`, driven with click's CliRunner against the stand-in server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from webcallback.cli.client_cmd import client

from .standin import Recorded, Reply, StandIn

DATA = Path(__file__).parent / "data"


def write_account(tmp_path: Path, url: str, **nodes: str) -> str:
    children = "".join(f"<{k}>{v}</{k}>" for k, v in {"wcb_url": url, **nodes}.items())
    path = tmp_path / "account.xml"
    path.write_text(
        f"<account><username>john</username><callbackNumber>+1555</callbackNumber>{children}</account>"
    )
    return str(path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(client, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_dry_run_prints_the_seed_request() -> None:
    code, out, _ = run("call", "12345", "--account", str(DATA / "seed_get_account.xml"), "--dry-run")
    assert code == 0
    assert out.splitlines()[:5] == [
        (DATA / "seed_get_request_line.txt").read_text().strip(),
        "Host: example.com",
        "Connection: close",
        "Cache-Control: max-age=0",
        "User-Agent: CloudSoftphone/1.5.6",
    ]


def test_dry_run_options(tmp_path: Path) -> None:
    account = write_account(
        tmp_path, "http://h/x?i=%installid%&amp;a=%appid%&amp;k=%key%&amp;n=%nonce%&amp;p=%account[password]%"
    )
    code, out, err = run(
        "call", "+1 555", "--account", account, "--dry-run", "--installid", "I", "--appid", "A",
        "--param", "key=a b", "--nonce", "N1", "--user-agent", "Groundwire/1",
    )  # fmt: skip
    assert code == 0
    assert out.startswith("GET /x?i=I&a=A&k=a%20b&n=N1&p=%2A%2A%2A%2A HTTP/1.1")
    assert "User-Agent: Groundwire/1" in out
    assert "note: %account[password]% sent as asterisks" in err


def test_call_success(standin: StandIn, tmp_path: Path) -> None:
    standin.reply("/wcb", Reply(200))
    code, out, _ = run("call", "+1 (555) 123-1234", "--account", write_account(tmp_path, standin.url("/wcb")))
    assert (code, out) == (0, "waiting for call\n")


def test_call_refused_prints_message(standin: StandIn, tmp_path: Path) -> None:
    standin.reply(
        "/wcb", Reply(403, b'{"message": "Not enough credit."}', (("Content-Type", "application/json"),))
    )
    code, out, _ = run("call", "123", "--account", write_account(tmp_path, standin.url("/wcb")))
    assert (code, out) == (1, "Not enough credit.\n")


def test_call_timeout_and_refused(standin: StandIn, tmp_path: Path, refused_url: str) -> None:
    standin.reply("/wcb", Reply(200, delay=1.0))
    code, _, err = run(
        "call", "1", "--account", write_account(tmp_path, standin.url("/wcb"), wcb_timeout="0.2")
    )
    assert code == 2 and "no response" in err
    code, _, err = run("call", "1", "--account", write_account(tmp_path, refused_url))
    assert code == 2 and "cannot connect" in err


def test_bad_account_exits_2(tmp_path: Path) -> None:
    code, _, err = run("call", "1", "--account", str(tmp_path / "missing.xml"))
    assert code == 2 and "cannot read" in err
    code, _, err = run("call", "no digits", "--account", str(DATA / "seed_get_account.xml"))
    assert code == 2 and "no digits" in err


def test_check_any_provider(standin: StandIn, tmp_path: Path) -> None:
    standin.reply("/wcb", Reply(204))
    code, out, _ = run("check", "123", "--account", write_account(tmp_path, standin.url("/wcb")))
    assert code == 0
    assert "1. request: GET http://127.0.0.1:" in out
    assert "2. response: HTTP 204" in out
    assert "3. the app shows: waiting for call" in out
    assert "4. no callback id" in out


def test_check_refused(standin: StandIn, tmp_path: Path) -> None:
    standin.reply("/wcb", Reply(500, b"Internal error, sorry", (("Content-Type", "text/plain"),)))
    code, out, _ = run("check", "123", "--account", write_account(tmp_path, standin.url("/wcb")))
    assert code == 1
    assert "3. the app shows: Internal error, sorry (first 100 characters of the body)" in out


def fake_status_api(standin: StandIn, states: list[str], final_reason: str | None = None) -> None:
    """A FAKE of our server's status API, `GET /api/v1/callbacks/{id}`, stepping through `states`."""
    remaining = list(states)

    def route(request: Recorded) -> Reply:
        if request.header("Authorization") != "Bearer T0K":
            return Reply(401, b'{"error_id": "unauthorized"}', (("Content-Type", "application/json"),))
        state = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        reason = final_reason if state in ("completed", "failed") else None
        legs: dict[str, Any] = {"destination": {}, "callback": {}}
        body = {"id": "cb-1", "state": state, "reason": reason, "legs": legs}
        return Reply(200, json.dumps(body).encode(), (("Content-Type", "application/json"),))

    standin.routes["/api/v1/callbacks/cb-1"] = route
    standin.reply("/webcallback", Reply(202, b'{"id": "cb-1"}', (("Content-Type", "application/json"),)))


def test_check_follows_our_server(standin: StandIn, tmp_path: Path) -> None:
    fake_status_api(standin, ["queued", "queued", "dialing", "bridged", "completed"], "hangup")
    account = write_account(tmp_path, standin.url("/webcallback"))
    code, out, _ = run("check", "123", "--account", account, "--token", "T0K", "--poll-interval", "0.01")
    assert code == 0, out
    assert f"4. following callback cb-1 at {standin.base_url}" in out
    states = [line.strip() for line in out.splitlines() if line.strip().startswith("state:")]
    assert states == ["state: queued", "state: dialing", "state: bridged", "state: completed (hangup)"]


def test_check_failed_callback_exits_1(standin: StandIn, tmp_path: Path) -> None:
    fake_status_api(standin, ["dialing", "failed"], "destination busy")
    account = write_account(tmp_path, standin.url("/webcallback"))
    code, out, _ = run("check", "123", "--account", account, "--token", "T0K", "--poll-interval", "0.01")
    assert code == 1 and "state: failed (destination busy)" in out


def test_check_wrong_token_and_no_token(standin: StandIn, tmp_path: Path) -> None:
    fake_status_api(standin, ["completed"])
    account = write_account(tmp_path, standin.url("/webcallback"))
    code, _, err = run("check", "123", "--account", account, "--token", "bad")
    assert code == 2 and "HTTP 401" in err
    code, out, _ = run("check", "123", "--account", account)
    assert code == 0 and "callback id cb-1; pass --token" in out


def test_check_poll_timeout(standin: StandIn, tmp_path: Path) -> None:
    fake_status_api(standin, ["dialing"])
    account = write_account(tmp_path, standin.url("/webcallback"))
    args = ("--token", "T0K", "--poll-interval", "0.01", "--poll-timeout", "0.1")
    code, _, err = run("check", "123", "--account", account, *args)
    assert code == 2 and "still dialing" in err
