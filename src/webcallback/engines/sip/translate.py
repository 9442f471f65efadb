"""sippy's call-control events, read as core events. The only place that knows sippy's tuples."""

from __future__ import annotations

from typing import Any

from webcallback.core import events as ev
from webcallback.core._transitions import RINGING_PHASES, Phase
from webcallback.domain import EndedBy, LegRole
from webcallback.engines.sip._sippy import (
    NO_RESPONSE_REASON,
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventPreConnect,
    CCEventRedirect,
    CCEventRing,
)


def to_core(event: Any, role: LegRole, phase: Phase) -> ev.LegEvent | None:
    """The core event for a sippy event on a leg now in `phase`; None for ones we ignore.

    The phase tells a 2xx to our re-INVITE from a 2xx to the INVITE, which sippy reports alike.
    """
    data = event.getData()
    if isinstance(event, CCEventRing):
        return _ring(role, data)
    if isinstance(event, CCEventPreConnect):  # 2xx with an offer; sippy holds the ACK for us
        return ev.Answered(leg=role, code=data[0], reason=data[1], sdp=_sdp(data[2]) or "")
    if isinstance(event, CCEventConnect):
        if phase is Phase.REOFFERING:
            return ev.ReofferAnswered(leg=role, sdp=_sdp(data[2]) or "")
        return ev.Answered(leg=role, code=data[0], reason=data[1], sdp=_sdp(data[2]) or "")
    if isinstance(event, CCEventFail | CCEventRedirect):
        return _failure(role, phase, data)
    if isinstance(event, CCEventDisconnect):
        if phase in RINGING_PHASES:  # the INVITE transaction died without a final response
            return ev.Failed(leg=role, code=None, reason="no final response")
        return ev.RemoteHangup(leg=role)
    return None


def _ring(role: LegRole, data: Any) -> ev.LegEvent | None:
    code, reason, body = data[0], data[1], data[2] if len(data) > 2 else None
    if code == 100:
        return ev.Trying(leg=role)
    if not 101 <= code <= 199:
        return None
    return ev.Ringing(leg=role, code=code, reason=str(reason), sdp=_sdp(body))


def _failure(role: LegRole, phase: Phase, data: Any) -> ev.LegEvent:
    code = data[0] if isinstance(data[0], int) and 300 <= data[0] <= 699 else None
    reason = str(data[1]) if len(data) > 1 and data[1] is not None else None
    if phase is Phase.REOFFERING:
        return ev.ReofferFailed(leg=role, code=code, reason=reason)
    if phase in RINGING_PHASES or phase is Phase.ENDED:
        if code == 408 and reason == NO_RESPONSE_REASON:  # sippy's own 408: Timer B fired
            return ev.Failed(leg=role, code=408, reason="no response (Timer B)", by=EndedBy.TIMEOUT)
        return ev.Failed(leg=role, code=code, reason=reason)
    return ev.RemoteHangup(leg=role)  # the dialog broke while up (e.g. a 481 to a keep-alive)


def _sdp(body: Any) -> str | None:
    if body is None:
        return None
    text = str(body)
    return text if text.strip() else None
