"""The domain vocabulary: the innermost layer, importing nothing of ours.

Every other package (core, engines, store, billing, security, service, web, cli) may use these
names; this package uses none of theirs (the import contract in pyproject.toml holds it).
"""

from webcallback.domain.calls import (
    CallbackSpec,
    CallOutcome,
    EndedBy,
    LegOrder,
    LegRecord,
    LegRole,
    LegState,
    ProgressEvent,
    TrunkAttempt,
)
from webcallback.domain.credit import Admission
from webcallback.domain.dialogs import DialogReaper, LegDialog, Reaped, ReapResult
from webcallback.domain.engine import EngineError, ProgressCallback, TelephonyEngine
from webcallback.domain.reasons import FailureReason

__all__ = [
    "Admission",
    "CallOutcome",
    "CallbackSpec",
    "DialogReaper",
    "EndedBy",
    "EngineError",
    "FailureReason",
    "LegDialog",
    "LegOrder",
    "LegRecord",
    "LegRole",
    "LegState",
    "ProgressCallback",
    "ProgressEvent",
    "ReapResult",
    "Reaped",
    "TelephonyEngine",
    "TrunkAttempt",
]
