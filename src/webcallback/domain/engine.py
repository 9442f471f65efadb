"""The contract between the dispatcher and a telephony engine.

Engines do not touch the store: the dispatcher persists what they report through `on_progress`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from webcallback.domain.calls import CallbackSpec, CallOutcome, EndedBy, ProgressEvent


class EngineError(Exception):
    """The engine could not do what was asked (not reachable, misconfigured, crashed)."""


ProgressCallback = Callable[[ProgressEvent], None]


class TelephonyEngine(Protocol):
    """What the dispatcher needs from an engine. Implementations: `engines.sip` (embedded)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def run_callback(self, spec: CallbackSpec, on_progress: ProgressCallback) -> CallOutcome:
        """Place both legs, connect them, return when both have ended. Never raises for call
        failures (busy, no answer): those are outcomes. Raises `EngineError` only when the engine
        itself is broken. Cancelling the awaiting task hangs both legs up."""
        ...

    async def hangup(self, callback_id: str, ended_by: EndedBy = EndedBy.LOCAL) -> bool:
        """Hang up a running callback; False if it is not running here."""
        ...
