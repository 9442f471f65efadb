"""Which trunk a leg goes to, how its number is written, and when to try the next one. No I/O.

A `TrunkSet` holds every trunk's settings and live state (up/down, channels in use, counters, the
pacing schedule). `candidates(number, rng)` orders the trunks that may carry a number: lowest
`priority` first, and within one priority a weighted random order (RFC 2782's selection, as
RFC 3263 asks); a trunk that is down, full (`max_channels`), or does not carry the number's
prefix is left out. `pace(now)` says how long an INVITE must wait so that a trunk gets at most
`max_cps` per second: calls are delayed, never refused. The SIP engine drives all of this from
its reactor thread; the clock and the random source are passed in, so tests need no sockets.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from webcallback.config import TrunkSettings
from webcallback.domain import EndedBy

# Final responses after which the next trunk is tried: the trunk (not the callee) failed.
_FAIL_OVER_CODES = frozenset({408}) | frozenset(range(500, 600))


def fails_over(code: int | None, by: EndedBy, rang: bool) -> bool:
    """Whether an attempt that ended so is retried on the next trunk: 408, 5xx (503 among them),
    ICMP / socket errors and no response at all; never 4xx/6xx (busy, declined: the callee said
    so), and never once the attempt rang (a 18x: the callee's phone was reached)."""
    if rang:
        return False
    if by in (EndedBy.NETWORK, EndedBy.TIMEOUT):
        return True
    return code in _FAIL_OVER_CODES


def format_number(number: str, trunk: TrunkSettings) -> str:
    """The Request-URI user for an E.164 `number` (`+15551230001`) on this trunk."""
    digits = number.lstrip("+")
    if trunk.number_format == "e164":
        text = "+" + digits
    elif trunk.number_format == "e164-digits":
        text = digits
    elif trunk.country_code and digits.startswith(trunk.country_code):
        text = trunk.national_prefix + digits[len(trunk.country_code) :]
    else:  # national format, a number of another country: international prefix
        text = "00" + digits
    return trunk.tech_prefix + text[trunk.strip_digits :]


@dataclass
class Counters:
    attempts: int = 0
    answered: int = 0
    failed: int = 0  # attempts that ended with a failover cause (the next trunk was tried, or none was left)
    paced: int = 0  # INVITEs that had to wait for `max_cps`


@dataclass
class Trunk:
    """One trunk: its settings, where it is, and how it is doing."""

    name: str
    host: str
    port: int
    settings: TrunkSettings
    up: bool = True  # by the OPTIONS keep-alive (engine.sip.trunks[].options_interval)
    last_probe: str = ""  # what the last keep-alive got back
    channels: int = 0
    counters: Counters = field(default_factory=Counters)
    _next_invite: float = 0.0  # the earliest time the next INVITE may go (max_cps)

    def carries(self, number: str) -> bool:
        prefixes = self.settings.prefixes
        return not prefixes or any(number.startswith(p) for p in prefixes)

    @property
    def full(self) -> bool:
        limit = self.settings.max_channels
        return limit > 0 and self.channels >= limit

    def pace(self, now: float) -> float:
        """Seconds this INVITE waits (0: send now); books its slot. At most `max_cps` per second,
        spread evenly: a token bucket holding one token."""
        cps = self.settings.max_cps
        if cps <= 0:
            return 0.0
        at = max(now, self._next_invite)
        self._next_invite = at + 1.0 / cps
        if at > now:
            self.counters.paced += 1
        return at - now

    def seize(self) -> None:
        self.channels += 1
        self.counters.attempts += 1

    def release(self) -> None:
        self.channels = max(0, self.channels - 1)


class TrunkSet:
    def __init__(self, trunks: Iterable[Trunk]) -> None:
        self.trunks = list(trunks)

    def candidates(self, number: str, rng: random.Random) -> list[Trunk]:
        """The trunks to try for `number`, in order (see the module's docstring)."""
        carriers = [t for t in self.trunks if not t.full and t.carries(number)]
        # When the keep-alive says every trunk is down, try them anyway: a wrong "down" (OPTIONS
        # filtered, INVITEs still carried) must not turn into refusing every call.
        usable = [t for t in carriers if t.up] or carriers
        ordered: list[Trunk] = []
        for priority in sorted({t.settings.priority for t in usable}):
            ordered += weighted_order([t for t in usable if t.settings.priority == priority], rng)
        return ordered

    def by_name(self, name: str) -> Trunk | None:
        return next((t for t in self.trunks if t.name == name), None)


def weighted_order(trunks: list[Trunk], rng: random.Random) -> list[Trunk]:
    """RFC 2782: pick one with probability weight / total, remove it, repeat. Weight 0 trunks
    come last (a small chance first, as the RFC gives them, is not worth it here)."""
    pool = [t for t in trunks if t.settings.weight > 0]
    out: list[Trunk] = []
    while pool:
        total = sum(t.settings.weight for t in pool)
        pick = rng.uniform(0, total)
        running = 0.0
        for t in pool:
            running += t.settings.weight
            if pick <= running:
                break
        out.append(t)
        pool.remove(t)
    return out + [t for t in trunks if t.settings.weight <= 0]
