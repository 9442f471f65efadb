"""How a finished session is summed up for the dispatcher and the CDR."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webcallback.domain import CallOutcome, EndedBy, FailureReason, LegState

if TYPE_CHECKING:
    from webcallback.core.leg import Leg
    from webcallback.core.session import CallbackSession

# Final responses that mean "the person is there but won't take it" vs "nobody picked up".
_BUSY = frozenset({486, 600})
_DECLINED = frozenset({603})
_NO_ANSWER = frozenset({408, 480, 487})


def build_outcome(session: CallbackSession) -> CallOutcome:
    bridged_at, unbridged_at = session.bridged_at, session.unbridged_at
    bridged_s = round(unbridged_at - bridged_at, 3) if bridged_at is not None and unbridged_at else 0.0
    reason = _failure_reason(session.ended_order)
    if bridged_at is not None and reason is not FailureReason.SESSION_EXPIRED:
        reason = FailureReason.COMPLETED  # a talk that ended: a session timer is the one news
    return CallOutcome(
        callback_id=session.spec.callback_id,
        completed=bridged_at is not None,
        reason=reason,
        legs={role: leg.record() for role, leg in session.legs.items()},
        bridged_at=bridged_at,
        bridged_s=max(bridged_s, 0.0),
    )


# Who ended the leg that ended first, when that does not name the leg in the reason.
_NOT_THE_LEG = {
    EndedBy.LOCAL: FailureReason.CANCELLED,
    EndedBy.SHUTDOWN: FailureReason.SHUTDOWN,
    EndedBy.MAX_DURATION: FailureReason.MAX_DURATION,
    EndedBy.SESSION_EXPIRED: FailureReason.SESSION_EXPIRED,
}


def _failure_reason(ended_order: list[Leg]) -> FailureReason:
    """Named after the leg that ended first for a reason of its own, e.g. `destination-busy`."""
    cause = next((leg for leg in ended_order if leg.ended_by is not EndedBy.PEER_LEG), None)
    if cause is None or cause.ended_by is None:
        return FailureReason.FAILED
    by = cause.ended_by
    if by is EndedBy.REMOTE:
        return FailureReason(f"{cause.role.value}-{_remote_kind(cause.code)}")
    if by is EndedBy.TIMEOUT:  # the ring or progress timer, or Timer B (no response at all)
        return FailureReason(f"{cause.role.value}-{_timeout_kind(cause)}")
    if by is EndedBy.NETWORK:
        return FailureReason(f"{cause.role.value}-unreachable")
    if by is EndedBy.ERROR:
        return FailureReason(f"{cause.role.value}-error")
    return _NOT_THE_LEG.get(by, FailureReason.FAILED)


def _timeout_kind(leg: Leg) -> str:
    """How far a leg that timed out had got: nothing back, only 100 Trying, or ringing."""
    if leg.furthest in (LegState.IDLE, LegState.TRYING):
        return "no-progress" if leg.heard else "no-response"
    return "no-answer"


def _remote_kind(code: int | None) -> str:
    if code is None or code < 300:
        return "hung-up"  # answered (or never finally answered), then BYE before the bridge
    if code in _BUSY:
        return "busy"
    if code in _DECLINED:
        return "declined"
    if code in _NO_ANSWER:
        return "no-answer"
    return "failed"
