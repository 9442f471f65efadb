"""Errors raised by the call-control core.

    CallControlError
     └── IllegalTransition   a leg was asked to do something its state does not allow

The core raises only these; the engine adapter decides whether to log, hang up or re-raise.
"""

from __future__ import annotations


class CallControlError(Exception):
    """Base class of everything the core raises."""


class IllegalTransition(CallControlError):
    """`trigger` is not allowed in `state`; the leg's state was left unchanged."""

    def __init__(self, leg: str, state: str, trigger: str) -> None:
        super().__init__(f"leg {leg}: {trigger!r} is not allowed in state {state!r}")
        self.leg = leg
        self.state = state
        self.trigger = trigger
