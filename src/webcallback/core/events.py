"""What the engine tells the core: one frozen value per thing that happened on the wire.

Every event names the leg it concerns. SDP is plain text; the engine has already decided
whether a 2xx is the answer to our INVITE or to our re-INVITE (it knows which transaction it
came from), so the core never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass

from webcallback.core.session_timer import TimerTerms
from webcallback.domain import EndedBy, LegRole


def _check_code(code: int | None, low: int, high: int) -> None:
    if code is not None and not low <= code <= high:
        raise ValueError(f"SIP status {code} is outside {low}-{high}")


@dataclass(frozen=True, kw_only=True)
class Trying:
    """100 Trying: the next hop has the INVITE."""

    leg: LegRole


@dataclass(frozen=True, kw_only=True)
class Ringing:
    """18x. `sdp` is set when it carries early media (typically 183 Session Progress)."""

    leg: LegRole
    code: int = 180
    reason: str = "Ringing"
    sdp: str | None = None

    def __post_init__(self) -> None:
        _check_code(self.code, 101, 199)


@dataclass(frozen=True, kw_only=True)
class Answered:
    """2xx to our INVITE. `sdp` is the far end's offer (late-offer INVITE) or its answer (Flow I B)."""

    leg: LegRole
    sdp: str
    code: int = 200
    reason: str = "OK"
    session_expires: str | None = None  # the 2xx's Session-Expires value (RFC 4028), if any

    def __post_init__(self) -> None:
        _check_code(self.code, 200, 299)


@dataclass(frozen=True, kw_only=True)
class Failed:
    """Final non-2xx to our INVITE (busy, declined, 408 timer B, 401 without credentials...).

    `code` is None when the dialog ended without a final response we could read. `by` says who
    ended it: the far end (a response), `TIMEOUT` (no response at all: Timer B's local 408) or
    `NETWORK` (ICMP unreachable, a socket error)."""

    leg: LegRole
    code: int | None
    reason: str | None = None
    by: EndedBy = EndedBy.REMOTE

    def __post_init__(self) -> None:
        _check_code(self.code, 300, 699)


@dataclass(frozen=True, kw_only=True)
class ReofferAnswered:
    """2xx to our re-INVITE, carrying the leg's answer to the SDP we re-offered."""

    leg: LegRole
    sdp: str
    session_expires: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReofferFailed:
    """Non-2xx (or timeout) to our re-INVITE: the leg cannot take the other leg's media."""

    leg: LegRole
    code: int | None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RemoteHangup:
    """The far end sent BYE."""

    leg: LegRole


@dataclass(frozen=True, kw_only=True)
class HangupRequested:
    """Someone on our side wants the callback over (API hang-up, shutdown, cancelled task)."""

    ended_by: EndedBy = EndedBy.LOCAL


@dataclass(frozen=True, kw_only=True)
class RefreshAnswered:
    """2xx to our session refresh (re-INVITE or UPDATE), with its Session-Expires value if any."""

    leg: LegRole
    session_expires: str | None = None


@dataclass(frozen=True, kw_only=True)
class RefreshFailed:
    """Our session refresh failed: a non-2xx (`min_se`: the Min-SE of a 422), or no response at
    all (`code` None, or the 408 the transaction layer makes up)."""

    leg: LegRole
    code: int | None
    reason: str | None = None
    min_se: str | None = None


@dataclass(frozen=True, kw_only=True)
class RefreshReceived:
    """The far end refreshed the session and we answered 2xx with these terms."""

    leg: LegRole
    terms: TimerTerms


LegEvent = (
    Trying | Ringing | Answered | Failed | ReofferAnswered | ReofferFailed | RemoteHangup
    | RefreshAnswered | RefreshFailed | RefreshReceived
)  # fmt: skip
Event = LegEvent | HangupRequested
