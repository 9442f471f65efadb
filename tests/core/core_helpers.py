"""Helpers for driving a `CallbackSession` by hand: time is passed in, nothing sleeps."""

from __future__ import annotations

from typing import Any

from webcallback.core.commands import Command, Finished, Report, SipCommand
from webcallback.domain import CallbackSpec, CallOutcome, LegOrder, ProgressEvent


def _sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


OFFER_DEST = _sdp(
    "v=0", "o=dest 1 1 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0",
    "m=audio 4000 RTP/AVP 0 8", "a=rtpmap:0 PCMU/8000",
)  # fmt: skip
OFFER_BACK = _sdp(
    "v=0", "o=back 2 2 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
    "m=audio 5000 RTP/AVP 8", "a=rtpmap:8 PCMA/8000",
)  # fmt: skip
ANSWER_DEST = _sdp(
    "v=0", "o=dest 1 2 IN IP4 10.0.0.1", "s=-", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 4000 RTP/AVP 8"
)
ANSWER_BACK = _sdp(
    "v=0", "o=back 2 3 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0", "m=audio 5000 RTP/AVP 0"
)


def make_spec(**overrides: Any) -> CallbackSpec:
    values: dict[str, Any] = {
        "callback_id": "cb-1",
        "destination": "+15551230001",
        "callback": "+15551230002",
        "caller_id_to_destination": "+15551230002",
        "caller_id_to_callback": "+15551230001",
        "leg_order": LegOrder.DESTINATION_FIRST,
        "ring_timeout": 30.0,
        "max_duration": None,
    }
    values.update(overrides)
    return CallbackSpec(**values)


def sip_only(commands: list[Command]) -> list[SipCommand]:
    return [c for c in commands if not isinstance(c, Report | Finished)]


def reports(commands: list[Command]) -> list[ProgressEvent]:
    return [c.progress for c in commands if isinstance(c, Report)]


def outcome_of(commands: list[Command]) -> CallOutcome:
    finished = [c for c in commands if isinstance(c, Finished)]
    assert len(finished) == 1, commands
    return finished[0].outcome
