"""One leg over several trunks: the attempts, pacing, and failover. Reactor thread only.

The call-control core sees one leg; this sends the leg's INVITE to the trunks `core.trunks`
orders, one after the other. An attempt that fails for a reason `core.trunks.fails_over` accepts
(408, 5xx, ICMP, no response: Timer B or `engine.sip.trunk_silence` seconds without even a
100 Trying) is not told to the core while another trunk remains and the leg's ring timeout has
not passed: the next trunk is dialled instead. Everything else reaches the core as before.
Each attempt is kept (`LegAttempt`) and logged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webcallback.core.trunks import Trunk, TrunkSet, fails_over, format_number
from webcallback.domain import EndedBy, LegRole, TrunkAttempt
from webcallback.engines.sip._sippy import SipHeader, Timeout
from webcallback.engines.sip.addressing import from_identity

log = logging.getLogger(__name__)


@dataclass
class LegAttempt:
    """One INVITE of a leg to one trunk, and how it ended (None while it runs)."""

    trunk: str
    number: str  # the Request-URI user as sent
    started_at: float
    code: int | None = None
    result: str | None = None  # "answered", "failed over: ...", or the final reason


@dataclass
class LegRoute:
    """The trunks left for one leg, and what was tried."""

    number: str
    caller_id: str
    deadline: float  # the leg's ring timeout: no new attempt after it
    left: list[Trunk]
    current: Trunk | None = None
    heard: bool = False  # the current attempt got some response (a 100 Trying at least)
    rang: bool = False  # the current attempt rang (18x): it is not failed over any more
    attempts: list[LegAttempt] = field(default_factory=list)
    silence_timer: Any = None

    def end_attempt(self, result: str, code: int | None = None) -> None:
        if self.current is not None:
            self.current.release()
            self.current = None
        if self.attempts and self.attempts[-1].result is None:
            self.attempts[-1].code, self.attempts[-1].result = code, result
        self.stop_silence()

    def stop_silence(self) -> None:
        if self.silence_timer is not None:
            self.silence_timer.cancel()
            self.silence_timer = None


# dial(role, trunk, Request-URI user, extra INVITE headers, From anonymous?)
Dial = Callable[[LegRole, Trunk, str, tuple[Any, ...], bool], None]


class Router:
    """The trunk side of one callback's legs (see the module docstring)."""

    def __init__(self, trunks: TrunkSet, clock: Callable[[], float], silence: float,
                 rng: random.Random) -> None:  # fmt: skip
        self.trunks, self.clock, self.silence, self.rng = trunks, clock, silence, rng
        self.routes: dict[LegRole, LegRoute] = {}

    def begin(self, role: LegRole, number: str, caller_id: str, ring_timeout: float) -> LegRoute:
        now = self.clock()
        route = LegRoute(number, caller_id, now + ring_timeout, self.trunks.candidates(number, self.rng))
        self.routes[role] = route
        return route

    def next_attempt(self, role: LegRole, dial: Dial, on_silence: Callable[[], None]) -> bool:
        """Dial the next trunk (after its `max_cps` pacing delay); False when none is left."""
        route = self.routes[role]
        now = self.clock()
        if not route.left or now >= route.deadline:
            return False
        trunk = route.left.pop(0)
        route.current, route.heard, route.rang = trunk, False, False
        trunk.seize()
        user = format_number(route.number, trunk.settings)
        route.attempts.append(LegAttempt(trunk.name, user, now))
        headers, anonymous = identity_headers(route.caller_id, trunk)
        delay = trunk.pace(now)

        def go() -> None:
            if route.current is trunk:
                log.debug("%s: INVITE %s via trunk %s", role.value, user, trunk.name)
                dial(role, trunk, user, headers, anonymous)
                if self.silence > 0 and route.left:  # silence: the next trunk, if there is one
                    route.silence_timer = Timeout(on_silence, self.silence)

        if delay > 0:
            Timeout(go, delay)
        else:
            go()
        return True

    def heard(self, role: LegRole, code: int) -> None:
        route = self.routes.get(role)
        if route is None:
            return
        route.heard = True
        route.stop_silence()
        if 180 <= code <= 189 or code == 199:
            route.rang = True

    def answered(self, role: LegRole) -> None:
        route = self.routes.get(role)
        if route is not None and route.current is not None and route.attempts[-1].result is None:
            route.current.counters.answered += 1
            route.attempts[-1].code, route.attempts[-1].result = 200, "answered"
            route.stop_silence()  # the channel stays taken until the leg ends (leg_over)

    def should_fail_over(self, role: LegRole, code: int | None, by: EndedBy) -> bool:
        """The current attempt failed like this: is another trunk tried (and the core not told)?"""
        route = self.routes.get(role)
        if route is None or route.current is None or not fails_over(code, by, route.rang):
            return False
        route.current.counters.failed += 1
        return bool(route.left) and self.clock() < route.deadline

    def leg_over(self, role: LegRole, reason: str | None, code: int | None) -> tuple[TrunkAttempt, ...]:
        """The leg ended: its trunk's channel is free. Returns the leg's attempts, for its record."""
        route = self.routes.get(role)
        if route is None:
            return ()
        if route.current is not None:
            route.end_attempt(reason or "ended", code)
        return tuple(TrunkAttempt(trunk=a.trunk, number=a.number, started_at=a.started_at, sip_code=a.code,
                                  result=a.result) for a in route.attempts)  # fmt: skip


def identity_headers(caller_id: str, trunk: Trunk) -> tuple[tuple[Any, ...], bool]:
    """(extra INVITE headers, From anonymous?) for the trunk's `caller_id` mode (RFC 3325)."""
    settings = trunk.settings
    if settings.caller_id != "pai":
        return (), False
    user, display = from_identity(caller_id)
    pai = SipHeader(name="P-Asserted-Identity", bodys=f'"{display}" <sip:{user}@{trunk.host}>')
    if not settings.privacy:
        return (pai,), False
    return (pai, SipHeader(name="Privacy", bodys="id")), True
