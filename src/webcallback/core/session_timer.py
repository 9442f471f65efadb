"""Session timers (RFC 4028) of one leg: what we ask for, what was agreed, when to act. No I/O.

Every leg we originate asks to be refreshed by us (`Session-Expires: N;refresher=uac`, `Min-SE`,
`Supported: timer`). The far end's 2xx says what was agreed; a 2xx without `Session-Expires`
(a far end without timers) leaves us refreshing at our own interval anyway: a liveness check, so
that a far end whose BYE was lost is still noticed. The refresher refreshes at half the interval
(§10); a refresh answered 408 or 481, or not answered before the session expires, ends the
session. When the far end is the refresher and its refresh has not come by the interval minus
min(32 s, interval / 3) (§10), the session is over too.

Header values are plain strings here; the engine puts them on the wire and hands back what the
far end sent. Times are the caller's clock in seconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

MIN_SE_FLOOR = 90  # RFC 4028 §4: the smallest Min-SE a UA may require (shorter: tests only)
FATAL_CODES = frozenset({408, 481})  # §10: the dialog is gone; any other failure is retried

Headers = tuple[tuple[str, str], ...]


class Refresher(enum.StrEnum):
    US = "us"
    PEER = "peer"


class Due(enum.StrEnum):
    REFRESH = "refresh"
    EXPIRED = "expired"


@dataclass(frozen=True, kw_only=True)
class TimerPolicy:
    """Our side of the negotiation: the interval we ask for and the shortest we accept."""

    expires: int = 1800
    min_se: int = MIN_SE_FLOOR

    def __post_init__(self) -> None:
        if self.min_se < 1 or self.expires < self.min_se:
            raise ValueError(f"session timer: expires {self.expires} must be >= min_se {self.min_se} >= 1")

    def request_headers(self) -> Headers:
        """For a request of ours that opens or refreshes the session (INVITE, re-INVITE, UPDATE)."""
        return (
            ("Session-Expires", f"{self.expires};refresher=uac"),
            ("Min-SE", str(self.min_se)),
            ("Supported", "timer"),
        )

    def after_422(self, peer_min_se: str | None) -> TimerPolicy | None:
        """§7.4: retry with the far end's Min-SE; None when there is nothing to retry with."""
        floor = _delta(peer_min_se)
        if floor is None or floor <= self.min_se:
            return None
        return TimerPolicy(expires=max(self.expires, floor), min_se=floor)


@dataclass(frozen=True, kw_only=True)
class TimerTerms:
    """What was agreed for one dialog: the interval and who refreshes it."""

    interval: int
    refresher: Refresher


def parse_session_expires(value: str | None) -> tuple[int, str | None] | None:
    """`"1800;refresher=uac"` -> `(1800, "uac")`; None when absent or unreadable."""
    if value is None:
        return None
    head, *params = (part.strip() for part in value.split(";"))
    delta = _delta(head)
    if delta is None:
        return None
    refresher = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = val.strip().lower() or None
    return delta, refresher


def agreed_in_response(policy: TimerPolicy, session_expires: str | None) -> TimerTerms:
    """The terms of a 2xx to a request of ours (we were the UAC)."""
    parsed = parse_session_expires(session_expires)
    if parsed is None:  # no timer at the far end: we refresh at our own interval (liveness)
        return TimerTerms(interval=policy.expires, refresher=Refresher.US)
    delta, refresher = parsed
    return TimerTerms(interval=delta, refresher=Refresher.PEER if refresher == "uas" else Refresher.US)


@dataclass(frozen=True, kw_only=True)
class RefreshAnswer:
    """How to answer a far end's refresh (re-INVITE or UPDATE; we are the UAS of it)."""

    code: int
    reason: str
    headers: Headers
    terms: TimerTerms | None  # None: refused, nothing changes


def answer_refresh(policy: TimerPolicy, session_expires: str | None, supports_timer: bool) -> RefreshAnswer:
    """§9: a request below our Min-SE gets 422; otherwise 200 with the Session-Expires agreed.

    The far end refreshes when it asked to (`refresher=uac`); otherwise we do (`uas`), as we do
    on every leg of ours."""
    parsed = parse_session_expires(session_expires)
    if parsed is not None and parsed[0] < policy.min_se:
        return RefreshAnswer(code=422, reason="Session Interval Too Small",
                             headers=(("Min-SE", str(policy.min_se)),), terms=None)  # fmt: skip
    delta, asked = parsed if parsed is not None else (policy.expires, None)
    theirs = asked == "uac"
    headers: Headers = (("Session-Expires", f"{delta};refresher={'uac' if theirs else 'uas'}"),)
    if supports_timer:
        headers += (("Require", "timer"),)
    terms = TimerTerms(interval=delta, refresher=Refresher.PEER if theirs else Refresher.US)
    return RefreshAnswer(code=200, reason="OK", headers=headers, terms=terms)


@dataclass(frozen=True, kw_only=True)
class SessionTimer:
    """The timer of one confirmed dialog. Immutable: each step returns the next value."""

    terms: TimerTerms
    refreshed_at: float
    in_flight: bool = False  # a refresh of ours awaits its final response
    retry_at: float | None = None  # after a refresh that failed without ending the dialog

    @classmethod
    def start(cls, terms: TimerTerms, now: float) -> SessionTimer:
        return cls(terms=terms, refreshed_at=now)

    @property
    def expires_at(self) -> float:
        return self.refreshed_at + self.terms.interval

    def next_deadline(self) -> float:
        interval = self.terms.interval
        if self.terms.refresher is Refresher.PEER:
            return self.expires_at - min(32.0, interval / 3)
        if self.in_flight:
            return self.expires_at
        if self.retry_at is not None:
            return min(self.retry_at, self.expires_at)
        return self.refreshed_at + interval / 2

    def due(self, now: float) -> Due | None:
        if now < self.next_deadline():
            return None
        if self.terms.refresher is Refresher.PEER or self.in_flight or now >= self.expires_at:
            return Due.EXPIRED
        return Due.REFRESH

    def sent(self) -> SessionTimer:
        return replace(self, in_flight=True, retry_at=None)

    def refreshed(self, terms: TimerTerms, now: float) -> SessionTimer:
        """A 2xx to a refresh (ours or the far end's): the session lives another interval."""
        return SessionTimer(terms=terms, refreshed_at=now)

    def failed(self, now: float, *, at_once: bool = False) -> SessionTimer:
        """A refresh of ours failed without ending the dialog (491, 5xx...): try again halfway
        to the expiry, or `at_once` (after a 422, with the far end's Min-SE)."""
        return replace(self, in_flight=False, retry_at=now if at_once else (now + self.expires_at) / 2)


def _delta(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.split(";", 1)[0].strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**32 else None
