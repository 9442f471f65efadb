"""The first run: with the SIP engine and no `[engine.sip] trunk`, `webcallback run` starts a phone
lab on loopback so a real callback can be placed end to end on one machine.

`plan_lab(settings)` decides, and returns the settings the service then runs with: the trunk points
at the lab's SIPp phones, the number policy admits the lab's unassigned +1 555 numbers, and, when
`[api] token` is unset, the status API gets a token made up for this run. `Lab.phones_hook` starts
and stops the phones with the service; `Lab.announce_hook` (entered last, when everything is up)
creates the `demo` account if needed and prints the curl commands that place a callback and show
its progress.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from webcallback.billing.rating import Rate
from webcallback.config import Secret, Settings
from webcallback.lab.phones import LabPhones, free_udp_port
from webcallback.service.container import Services
from webcallback.store.accounts import Account

DEMO_USER = "demo"
DEMO_CALLBACK = "+15550100001"  # any number rings a lab phone
DEMO_DESTINATION = "+15550100002"
DEMO_CREDIT = Decimal(10)
LAB_PLAN = "lab"
LAB_PREFIX = "1555"  # the demo numbers; any number rings a lab phone, but only these have a rate


def plan_lab(settings: Settings, *, ring_ms: int = 1000) -> tuple[Settings, Lab | None]:
    if settings.engine.kind != "sip" or settings.engine.sip.trunk or settings.engine.sip.trunks:
        return settings, None
    phones = LabPhones(free_udp_port(), ring_ms=ring_ms, log_dir=Path(settings.node.state_dir) / "lab")
    engine = replace(settings.engine, sip=replace(settings.engine.sip, trunk=phones.uri))
    token = None if settings.api.token else secrets.token_urlsafe(18)
    api = replace(settings.api, token=Secret(token)) if token else settings.api
    # The lab's +1 555 numbers are possible but not valid, which the toll-fraud policy refuses as
    # UNKNOWN by default; nothing in the lab leaves the machine, so the lab admits them.
    policy = settings.security.policy
    refused = tuple(t for t in policy.refused_types if t != "UNKNOWN")
    security = replace(settings.security, policy=replace(policy, refused_types=refused))
    return replace(settings, engine=engine, api=api, security=security), Lab(phones, token)


@dataclass
class Lab:
    phones: LabPhones
    token: str | None  # made up for this run; None when `[api] token` is configured
    write: Callable[[str], None] = lambda text: print(text, file=sys.stdout, flush=True)

    @contextlib.asynccontextmanager
    async def phones_hook(self, _services: Services) -> AsyncIterator[None]:
        async with self.phones:
            yield

    @contextlib.asynccontextmanager
    async def announce_hook(self, services: Services) -> AsyncIterator[None]:
        account = ensure_demo_account(services)
        password = services.cipher.decrypt(account.username, account.password_enc, account.key_id)
        self.write(banner(services.settings, self.phones, password, self.token))
        yield


def ensure_demo_account(services: Services) -> Account:
    """The `demo` account, created on the first lab run; with billing on, on the `lab` plan."""
    plan = ensure_lab_plan(services)
    existing = services.accounts.find(DEMO_USER)
    if existing is not None:
        if plan and existing.plan is None:
            return services.accounts.update(DEMO_USER, plan=plan)
        return existing
    enc, kid = services.cipher.encrypt(DEMO_USER, secrets.token_urlsafe(9))
    return services.accounts.add(
        DEMO_USER,
        password_enc=enc,
        key_id=kid,
        callback_number=DEMO_CALLBACK,
        region="US",
        balance=DEMO_CREDIT,
        plan=plan,
    )


def ensure_lab_plan(services: Services) -> str | None:
    """With billing on (it fails closed), a `lab` plan that rates the lab's +1555 numbers at
    1 cent a minute, per second; created once, never replaced. None with billing off."""
    if services.billing is None:
        return None
    if services.billing.rates.find_plan(LAB_PLAN) is None:
        rate = Rate(prefix=LAB_PREFIX, price_per_minute=Decimal("0.01"), first_increment=1, next_increment=1,
                    description="phone lab")  # fmt: skip
        services.billing.rates.import_plan(LAB_PLAN, "USD", [rate])
    return LAB_PLAN


def base_url(settings: Settings) -> str:
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    host, _, port = settings.server.listen.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
    return f"{'https' if settings.server.tls_cert else 'http'}://{host}:{port}"


def _hash_command(settings: Settings, password: str) -> str:
    material = '"$nonce" ' + shlex.quote(password)
    if settings.auth.hash_recipe == "password+nonce":
        material = shlex.quote(password) + ' "$nonce"'
    digest = "sha1sum | cut -c1-40"
    if settings.auth.hash_encoding == "base64":
        digest = "openssl dgst -sha1 -binary | base64"
    return f"hash=$(printf '%s%s' {material} | {digest})"


def _auth_line(token: str | None) -> str:
    if token:
        return f"auth='Authorization: Bearer {token}'"
    # A configured token is not printed: the shell fills it in.
    return 'auth="Authorization: Bearer $WEBCALLBACK_API__TOKEN"   # set it to your [api] token'


def _watch_lines(settings: Settings) -> str:
    """Follow the callback by its id when the response carries it as JSON, else the newest one."""
    status = "$base/api/v1/callbacks/$id"
    place = 'id=$(curl -s "$url" | sed -E \'s/.*"id": *"([^"]+)".*/\\1/\'); echo "callback $id"'
    if settings.api.success_body == "empty" or settings.api.response_format not in ("auto", "json"):
        status = "$base/api/v1/callbacks?limit=1"
        place = 'curl -s -o /dev/null -w "HTTP %{http_code}\\n" "$url"'
    return f"""{place}
sleep 2; curl -s -H "$auth" "{status}"; echo   # dialing or bridged: the legs so far
sleep 8; curl -s -H "$auth" "{status}"; echo   # completed, with its CDR"""


def banner(settings: Settings, phones: LabPhones, password: str, token: str | None) -> str:
    path = "/" + settings.api.path.strip("/")
    return f"""
Phone lab: no [engine.sip] trunk is configured, so every leg goes to SIPp phones at {phones.uri}
that answer any number after {phones.ring_ms / 1000:g} s and hang up 5 s after they are connected.
Demo account: {DEMO_USER} / {password} (callback number {DEMO_CALLBACK}, credit {DEMO_CREDIT} USD).
Place a callback to {DEMO_DESTINATION} and watch it (paste into a shell):

base={base_url(settings)}; {_auth_line(token)}
nonce=$(date +%s%N); {_hash_command(settings, password)}
url="$base{path}?username={DEMO_USER}&nonce=$nonce&hash=$hash&targetNumber=%2B{DEMO_DESTINATION[1:]}"
{_watch_lines(settings)}
"""
