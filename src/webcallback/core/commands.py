"""What the core asks the engine to do, and what it reports. Frozen values, executed in order."""

from __future__ import annotations

from dataclasses import dataclass

from webcallback.core.session_timer import Headers
from webcallback.domain import CallOutcome, LegRole, ProgressEvent


@dataclass(frozen=True, kw_only=True)
class Originate:
    """Send an INVITE to `number`. `sdp` None means a late offer (the far end offers in its 200)."""

    leg: LegRole
    number: str
    caller_id: str
    sdp: str | None = None
    headers: Headers = ()  # extra header fields (the session timer's), in order


@dataclass(frozen=True, kw_only=True)
class Ack:
    """ACK the leg's 2xx (which carried an offer) with this answer."""

    leg: LegRole
    sdp: str


@dataclass(frozen=True, kw_only=True)
class Reoffer:
    """Send a re-INVITE carrying `sdp` (the other leg's offer, restamped for this leg)."""

    leg: LegRole
    sdp: str
    headers: Headers = ()


@dataclass(frozen=True, kw_only=True)
class Refresh:
    """Refresh the leg's session (RFC 4028): UPDATE without a body where the far end allows it,
    else a re-INVITE with the SDP last sent on the dialog, unchanged."""

    leg: LegRole
    headers: Headers


@dataclass(frozen=True, kw_only=True)
class Cancel:
    """CANCEL the leg's pending INVITE."""

    leg: LegRole


@dataclass(frozen=True, kw_only=True)
class Bye:
    """End the leg's confirmed dialog with BYE."""

    leg: LegRole


@dataclass(frozen=True, kw_only=True)
class Report:
    """Domain progress for the dispatcher; no SIP action."""

    progress: ProgressEvent


@dataclass(frozen=True, kw_only=True)
class Finished:
    """Both legs are over; this is the callback's result. Always the last command."""

    outcome: CallOutcome


SipCommand = Originate | Ack | Reoffer | Refresh | Cancel | Bye
Command = SipCommand | Report | Finished
