"""End-to-end fixtures across the seams: `webcallback run` as a child process (tests/dispatch's
`running_service`) with billing on, a rate plan imported with the real `webcallback rates import`,
an account made with `webcallback account add`, and the lab's SIPp phone with a message trace, so
the tests can see on the wire what the service did (INVITEs, when each BYE arrived).

Every leg goes to one SIPp (the trunk), which answers any number. The numbers are valid US numbers
(`+1 202 555 01xx`), not the lab's `+1555…`, so the tests pass a number policy that refuses numbers
libphonenumber does not recognise: the destination is `+12025550100`, the user's `+12025550101`.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dispatch.service_process import Service, service_env
from tests.sip.phones import SipMessage, parse_trace
from webcallback.lab.phones import SCENARIO, LabPhones, free_udp_port

PASSWORD = "pa55word"
DESTINATION, CALLBACK = "+12025550100", "+12025550101"
RING_MS = 300
BUSY = SCENARIO.parent / "uas_reject.xml"
# tests/dispatch's service_env turns the security limits off for the other suites: back to the
# shipped defaults here (docs/security.md)
SECURITY_DEFAULTS = {
    "SECURITY__LIMITS__DUPLICATE_WINDOW": "30",
    "SECURITY__LIMITS__CONCURRENT_CALLBACKS_PER_USER": "1",
    "SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_USER": "10",
    "SECURITY__POLICY__REFUSED_TYPES": "PREMIUM_RATE,SHARED_COST,UAN,PERSONAL_NUMBER,UNKNOWN",
}

SETTLE_CEILING = 60.0  # seconds: a guard, not a budget (see settled_balance)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("sipp") is None:
        skip = pytest.mark.skip(reason="SIPp (sip-tester) is not installed")
        for item in items:
            item.add_marker(skip)


class TracedPhones(LabPhones):
    """The lab's SIPp phone, with every SIP message it sends or receives in a trace file."""

    @property
    def trace_file(self) -> Path:
        return self._log_dir / "messages.log"

    def command(self, sipp: str) -> list[str]:
        return [*super().command(sipp), "-trace_msg", "-message_file", str(self.trace_file)]

    def messages(self) -> list[SipMessage]:
        if not self.trace_file.exists():
            return []
        return parse_trace(self.trace_file.read_text(errors="replace"))

    def calls(self) -> dict[str, list[SipMessage]]:
        """The messages of each SIP call (one per leg), by Call-ID, in order."""
        out: dict[str, list[SipMessage]] = {}
        for m in self.messages():
            (call_id,) = m.headers("Call-ID") or m.headers("i")
            out.setdefault(call_id, []).append(m)
        return out

    def legs_to(self, number: str) -> list[list[SipMessage]]:
        """The calls whose first INVITE was for `number`."""
        return [
            msgs
            for msgs in self.calls().values()
            if msgs[0].method == "INVITE" and msgs[0].first_line.startswith(f"INVITE sip:{number}@")
        ]


def talk_scenario(directory: Path, talk_ms: int) -> Path:
    """The lab phone, with the talk time of the leg that hangs up by itself set to `talk_ms`."""
    text = SCENARIO.read_text()
    assert 'timeout="5000"' in text
    path = directory / f"lab_phone_{talk_ms}.xml"
    path.write_text(text.replace('timeout="5000"', f'timeout="{talk_ms}"'))
    return path


@pytest.fixture
def lab_phones(tmp_path: Path) -> Callable[..., TracedPhones]:
    """`lab_phones(talk_ms=…)` or `lab_phones(scenario=…)`: a traced SIPp phone (use `async with`)."""
    count = 0

    def make(*, talk_ms: int = 1500, scenario: Path | None = None, ring_ms: int = RING_MS) -> TracedPhones:
        nonlocal count
        count += 1
        directory = tmp_path / f"phones{count}"
        directory.mkdir()
        return TracedPhones(
            free_udp_port(),
            ring_ms=ring_ms,
            log_dir=directory,
            scenario=scenario or talk_scenario(directory, talk_ms),
        )

    return make


@dataclass
class Lab:
    """A configured service (not yet running): its environment and working directory."""

    env: dict[str, str]
    cwd: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "webcallback", *args]
        done = subprocess.run(cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def import_rates(self, plan: str, rows: list[str]) -> None:
        deck = self.cwd / f"{plan}.csv"
        header = "prefix,price_per_minute,connection_fee,first_increment,next_increment,description"
        deck.write_text("\n".join([header, *rows]) + "\n")
        out = self.cli("rates", "import", str(deck), "--plan", plan, "--currency", "USD").stdout
        assert f"into plan {plan}" in out, out

    def add_account(self, username: str, credit: str, plan: str) -> None:
        self.cli("account", "add", username, "--password", PASSWORD, "--callback-number", CALLBACK,
                 "--credit", credit, "--plan", plan)  # fmt: skip

    def account(self, username: str) -> dict[str, Any]:
        import json

        shown: dict[str, Any] = json.loads(self.cli("account", "show", username).stdout)
        return shown

    def ledger(self, username: str) -> list[dict[str, Any]]:
        import json

        entries: list[dict[str, Any]] = json.loads(self.cli("account", "ledger", username, "--json").stdout)
        return entries

    def cdrs(self) -> list[dict[str, Any]]:
        import json

        records: list[dict[str, Any]] = json.loads(self.cli("cdr", "export", "--format", "json").stdout)
        return records


def make_lab(db_url: str, tmp_path: Path, trunk: str, **settings: str) -> Lab:
    """Billing on (the default), a status API token, short ring timeout."""
    env = service_env(db_url, ENGINE__SIP__TRUNK=trunk, API__TOKEN="t0ken", CALLS__RING_TIMEOUT="5",
                      BILLING__ENABLED="true", **settings)  # fmt: skip
    cwd = tmp_path / "service"
    cwd.mkdir(exist_ok=True)
    return Lab(env, cwd)


def hash_login(username: str, password: str = PASSWORD) -> dict[str, str]:
    nonce = secrets.token_hex(8)
    return {
        "username": username,
        "nonce": nonce,
        "hash": hashlib.sha1((nonce + password).encode()).hexdigest(),
    }


def balance(service: Service, username: str) -> dict[str, Any]:
    """The balance checker over real HTTP, with the app's salted-hash login."""
    r = httpx.post(f"{service.url}/balance", json=hash_login(username), timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def settled_balance(service: Service, username: str) -> dict[str, Any]:
    """The balance once nothing is reserved. Settlement is a finished-hook, run in its own
    transaction just after the callback's final state is stored (docs/billing.md): a client can
    see `completed` a moment before the charge. A reservation that is never settled fails the
    caller's assertion once the ceiling passes."""
    deadline = time.monotonic() + SETTLE_CEILING
    while money((body := balance(service, username))["reserved"]) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return body


def money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.000001"))
