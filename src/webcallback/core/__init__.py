"""The call-control core: one sans-IO state machine per callback (see `session`)."""

from webcallback.core._transitions import TRANSITIONS, Phase, Trigger
from webcallback.core.errors import CallControlError, IllegalTransition
from webcallback.core.session import CallbackSession, Flow

__all__ = [
    "TRANSITIONS",
    "CallControlError",
    "CallbackSession",
    "Flow",
    "IllegalTransition",
    "Phase",
    "Trigger",
]
