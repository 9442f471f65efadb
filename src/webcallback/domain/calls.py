"""The plain data of one callback: its legs, what an engine is asked, what it reports.

The dispatcher (service layer) hands an engine one `CallbackSpec` per callback and awaits a
`CallOutcome`; meanwhile the engine reports each leg's progress as `ProgressEvent`s. Everything
here is plain data so that the core, the engines, the store and billing share it without
importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from webcallback.domain.dialogs import LegDialog
from webcallback.domain.reasons import FailureReason


class LegRole(enum.StrEnum):
    """Which of the two calls a leg is."""

    DESTINATION = "destination"  # the number the user wants to reach (targetNumber)
    CALLBACK = "callback"  # the user's own phone (callbackNumber)


class LegOrder(enum.StrEnum):
    """Which leg is dialled first. The seed says: the destination, then the callback number."""

    DESTINATION_FIRST = "destination-first"
    CALLBACK_FIRST = "callback-first"
    PARALLEL = "parallel"  # ring both at once, connect when both have answered


class LegState(enum.StrEnum):
    IDLE = "idle"
    TRYING = "trying"
    RINGING = "ringing"
    ANSWERED = "answered"
    BRIDGED = "bridged"
    ENDED = "ended"


class EndedBy(enum.StrEnum):
    """Who ended a leg: the far end, us (policy, timers, the other leg), or the network."""

    REMOTE = "remote"
    LOCAL = "local"
    PEER_LEG = "peer-leg"
    TIMEOUT = "timeout"
    MAX_DURATION = "max-duration"
    SHUTDOWN = "shutdown"
    ERROR = "error"
    NETWORK = "network"  # the next hop is unreachable: ICMP (port/host unreachable) or a socket error
    SESSION_EXPIRED = "session-expired"  # its session timer ran out (RFC 4028)


@dataclass(frozen=True, kw_only=True)
class CallbackSpec:
    """Everything an engine needs to place one callback."""

    callback_id: str
    destination: str  # E.164, e.g. "+15551231234"
    callback: str  # E.164
    caller_id_to_destination: str  # what the destination sees (default: the user's callback number)
    caller_id_to_callback: str  # what the user sees (default: the destination's number)
    leg_order: LegOrder = LegOrder.DESTINATION_FIRST
    ring_timeout: float = 30.0  # seconds, per leg
    # seconds from the INVITE to its first 18x or 2xx; None: only the ring timeout applies
    progress_timeout: float | None = None
    max_duration: float | None = None  # seconds of bridged talk; None = unlimited

    def __post_init__(self) -> None:
        if self.ring_timeout <= 0:
            raise ValueError("ring_timeout must be positive")
        if self.progress_timeout is not None and self.progress_timeout <= 0:
            raise ValueError("progress_timeout must be positive")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ValueError("max_duration must be positive")


@dataclass(frozen=True, kw_only=True)
class TrunkAttempt:
    """One INVITE of a leg to one trunk (several trunks: failover), and how it ended."""

    trunk: str
    number: str  # the Request-URI user as sent (after the trunk's number format)
    started_at: float  # wall clock
    sip_code: int | None = None
    result: str | None = None  # "answered", "failed over: <why>", or how the leg ended

    def to_json(self) -> dict[str, Any]:
        return {"trunk": self.trunk, "number": self.number, "started_at": self.started_at,
                "sip_code": self.sip_code, "result": self.result}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ProgressEvent:
    """One step of one leg (or of the whole callback when `leg` is None), as it happens."""

    callback_id: str
    leg: LegRole | None
    state: LegState
    at: float  # wall-clock time.time()
    sip_code: int | None = None
    reason: str | None = None
    ended_by: EndedBy | None = None
    # The leg's SIP dialog as it stands after this step (None: unchanged, or not SIP), so that a
    # restart can still hang it up; `refresh`: only the dialog changed, the leg's state did not.
    dialog: LegDialog | None = None
    refresh: bool = False
    attempts: tuple[TrunkAttempt, ...] = ()  # set when the leg ends, with its trunks tried


@dataclass(frozen=True, kw_only=True)
class LegRecord:
    """The final account of one leg, for the CDR."""

    role: LegRole
    number: str
    final_state: LegState  # the furthest state the leg reached (IDLE: never dialled; BRIDGED: talked)
    sip_code: int | None = None
    reason: str | None = None
    ended_by: EndedBy | None = None
    started_at: float | None = None  # wall clock, INVITE sent
    answered_at: float | None = None
    ended_at: float | None = None
    setup_s: float | None = None  # INVITE sent -> first 18x (post-dial delay) or final answer
    ring_s: float | None = None  # first 18x -> answer or give-up
    talk_s: float | None = None  # answer -> end


@dataclass(frozen=True, kw_only=True)
class CallOutcome:
    """How a callback ended. `bridged_s` is what billing settles on."""

    callback_id: str
    completed: bool  # both legs answered and were connected
    reason: FailureReason  # e.g. COMPLETED, DESTINATION_BUSY
    legs: dict[LegRole, LegRecord] = field(default_factory=dict)
    bridged_at: float | None = None
    bridged_s: float = 0.0
