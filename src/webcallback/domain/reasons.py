"""Why a callback ended: the one vocabulary of outcome reasons.

A `StrEnum`, so a reason is stored, logged and answered as the same short string it always was
(`"destination-busy"`), and code compares members instead of spelling strings. Leg reasons are
`<leg>-<kind>`: the leg that ended first for a reason of its own, and how (docs/engines.md).
"""

from __future__ import annotations

import enum


class FailureReason(enum.StrEnum):
    """The `reason` of a `CallOutcome` and of a stored callback; `COMPLETED` when nothing failed."""

    COMPLETED = "completed"  # both legs answered and were connected
    FAILED = "failed"  # no leg ended for a reason of its own
    CANCELLED = "cancelled"  # hung up by us (the API or the CLI) before the bridge
    SHUTDOWN = "shutdown"  # this node stopped while the call ran
    MAX_DURATION = "max-duration"  # the talk-time limit ended a leg before the bridge
    INTERRUPTED = "interrupted"  # found in flight at start-up: the process that ran it died
    ENGINE_TIMEOUT = "engine-timeout"  # the engine overran the callback's longest possible life
    ENGINE_ERROR = "engine-error"  # the engine itself failed (EngineError)
    INTERNAL_ERROR = "internal-error"  # an unexpected error in the dispatcher
    # a leg's session timer ran out (RFC 4028): our refresh failed (408, 481, no answer) or the
    # far end, as the refresher, did not refresh in time. Also when the call had been bridged.
    SESSION_EXPIRED = "session-expired"

    DESTINATION_BUSY = "destination-busy"
    DESTINATION_DECLINED = "destination-declined"
    DESTINATION_NO_ANSWER = "destination-no-answer"  # it rang (18x), nobody answered in time
    DESTINATION_NO_PROGRESS = "destination-no-progress"  # 100 Trying only, then silence
    DESTINATION_NO_RESPONSE = "destination-no-response"  # nothing at all came back (Timer B)
    DESTINATION_UNREACHABLE = "destination-unreachable"  # ICMP unreachable or a socket error
    DESTINATION_FAILED = "destination-failed"  # rejected with another 3xx-6xx: see the leg's SIP code
    DESTINATION_HUNG_UP = "destination-hung-up"  # answered, then BYE before the bridge
    DESTINATION_ERROR = "destination-error"
    CALLBACK_BUSY = "callback-busy"
    CALLBACK_DECLINED = "callback-declined"
    CALLBACK_NO_ANSWER = "callback-no-answer"
    CALLBACK_NO_PROGRESS = "callback-no-progress"
    CALLBACK_NO_RESPONSE = "callback-no-response"
    CALLBACK_UNREACHABLE = "callback-unreachable"
    CALLBACK_FAILED = "callback-failed"
    CALLBACK_HUNG_UP = "callback-hung-up"
    CALLBACK_ERROR = "callback-error"
