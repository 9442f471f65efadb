"""sippy's CCEvents read as core events, per leg phase."""

from __future__ import annotations

from typing import Any

import pytest

from webcallback.core import Phase
from webcallback.core import events as ev
from webcallback.domain import LegRole
from webcallback.engines.sip._sippy import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventPreConnect,
    CCEventRedirect,
    CCEventRing,
    CCEventUpdate,
    MsgBody,
)
from webcallback.engines.sip.translate import to_core

D = LegRole.DESTINATION
SDP = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n"


@pytest.mark.parametrize(
    ("event", "phase", "expected"),
    [
        (CCEventRing((100, "Trying", None)), Phase.CALLING, ev.Trying(leg=D)),
        (CCEventRing((180, "Ringing", None)), Phase.CALLING, ev.Ringing(leg=D, code=180, reason="Ringing")),
        (
            CCEventRing((183, "Session Progress", MsgBody(SDP))),
            Phase.RINGING,
            ev.Ringing(leg=D, code=183, reason="Session Progress", sdp=SDP),
        ),
        (CCEventPreConnect((200, "OK", MsgBody(SDP))), Phase.RINGING, ev.Answered(leg=D, sdp=SDP)),
        (CCEventConnect((200, "OK", MsgBody(SDP))), Phase.CALLING, ev.Answered(leg=D, sdp=SDP)),
        (CCEventConnect((200, "OK", MsgBody(SDP))), Phase.REOFFERING, ev.ReofferAnswered(leg=D, sdp=SDP)),
        (CCEventFail((486, "Busy Here")), Phase.RINGING, ev.Failed(leg=D, code=486, reason="Busy Here")),
        (
            CCEventFail((488, "Not Here")),
            Phase.REOFFERING,
            ev.ReofferFailed(leg=D, code=488, reason="Not Here"),
        ),
        (CCEventFail((481, "Gone")), Phase.BRIDGED, ev.RemoteHangup(leg=D)),
        (
            CCEventRedirect((302, "Moved", None, ())),
            Phase.CALLING,
            ev.Failed(leg=D, code=302, reason="Moved"),
        ),
        (CCEventDisconnect(), Phase.BRIDGED, ev.RemoteHangup(leg=D)),
        (CCEventDisconnect(), Phase.RINGING, ev.Failed(leg=D, code=None, reason="no final response")),
        (
            CCEventFail((487, "Request Terminated")),
            Phase.ENDED,
            ev.Failed(leg=D, code=487, reason="Request Terminated"),
        ),
        (CCEventUpdate(MsgBody(SDP)), Phase.BRIDGED, None),
        (CCEventRing((200, "odd", None)), Phase.CALLING, None),
    ],
)
def test_to_core(event: Any, phase: Phase, expected: ev.LegEvent | None) -> None:
    assert to_core(event, D, phase) == expected
