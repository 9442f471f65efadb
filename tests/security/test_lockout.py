"""Lockout after failed logins, per user and per address, over real HTTP; unlock by CLI."""

from __future__ import annotations

import json

import httpx

from tests.security.conftest import PASSWORD, MakeLab, params

LOCKOUT_ENV = {
    "auth__allow_password_over_http": "true",
    "security__lockout__max_failures_per_user": "3",
    "security__lockout__max_failures_per_ip": "6",
    "security__lockout__duration": "600",
}


def test_user_lockout_then_unlock(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **LOCKOUT_ENV)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        for _ in range(2):
            assert http.get("/webcallback", params=params(password="wrong")).status_code == 401
        third = http.get("/webcallback", params=params(password="wrong"))
        assert third.status_code == 429
        assert third.json()["error"] == "locked-out"
        assert 0 < int(third.headers["retry-after"]) <= 600
        # Now even the right password is refused, before it is checked.
        right = http.get("/webcallback", params=params())
        assert right.status_code == 429
        assert len(right.json()["message"]) < 100
        # Another user from the same address is not locked (the address has 3 of 6 failures).
        assert http.get("/webcallback", params=params(user="bob")).status_code == 200

        result = lab.cli("security", "lockouts", "--json")
        assert [row["key"] for row in json.loads(result.output)] == ["user:alice"]
        result = lab.cli("security", "unlock", "alice")
        assert result.exit_code == 0, result.output
        assert "user:alice" in result.output
        assert http.get("/webcallback", params=params()).status_code == 200


def test_address_lockout_covers_every_user(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **{**LOCKOUT_ENV, "security__lockout__max_failures_per_user": "0"})
    with lab.server() as url, httpx.Client(base_url=url) as http:
        statuses = [
            http.get("/webcallback", params=params(user=f"guess{i}", password="x")).status_code
            for i in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        locked = http.get("/webcallback", params=params(user="bob", password=PASSWORD))
        assert locked.status_code == 429 and locked.json()["error"] == "locked-out"
        assert lab.cli("security", "unlock", "127.0.0.1").exit_code == 0
        assert http.get("/webcallback", params=params(user="bob")).status_code == 200


def test_success_resets_the_user_count(make_lab: MakeLab, db_url: str) -> None:
    env = {
        **LOCKOUT_ENV,
        "security__lockout__max_failures_per_ip": "0",
        "security__limits__duplicate_window": "0",
        "security__limits__concurrent_callbacks_per_user": "0",
    }
    lab = make_lab(db_url, **env)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        for _ in range(3):  # 2 failures, then a success: never 3 in a row
            for _ in range(2):
                assert http.get("/webcallback", params=params(password="wrong")).status_code == 401
            assert http.get("/webcallback", params=params()).status_code == 200


def test_failures_are_security_events(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **LOCKOUT_ENV)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        for _ in range(3):
            http.get("/webcallback", params=params(password="wrong"))
    out = json.loads(lab.cli("security", "events", "--json").output)
    kinds = [e["kind"] for e in out]
    assert kinds.count("auth-failed") == 3
    assert "lockout" in kinds
    assert all(e["username"] == "alice" and e["client_ip"] == "127.0.0.1" for e in out)
    assert PASSWORD not in json.dumps(out) and "wrong" not in json.dumps(out)


def test_a_flood_while_locked_out_is_one_event_a_minute(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **LOCKOUT_ENV)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        for _ in range(3):
            http.get("/webcallback", params=params(password="wrong"))
        replies = [http.get("/webcallback", params=params()).status_code for _ in range(20)]
    assert set(replies) == {429}
    locked = json.loads(lab.cli("security", "events", "--kind", "locked", "--json").output)
    assert len(locked) == 1


def test_the_balance_and_rate_checkers_count_failures_and_honour_the_lockout(
    make_lab: MakeLab, db_url: str
) -> None:
    """/balance and /rate check the same passwords: they must not be an unlimited guessing oracle
    next to a locked callback endpoint."""
    lab = make_lab(db_url, billing__enabled="true", **LOCKOUT_ENV)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        assert http.get("/balance", params=params()).status_code == 200
        for _ in range(2):
            assert http.get("/balance", params=params(password="wrong")).status_code == 401
        third = http.get("/rate", params=params(password="wrong"))
        assert (third.status_code, third.json()["error"]) == (429, "locked-out")
        # locked: the right password is refused before it is checked, on every endpoint
        for path in ("/balance", "/rate", "/webcallback"):
            right = http.get(path, params=params())
            assert (right.status_code, right.json()["error"]) == (429, "locked-out"), path
