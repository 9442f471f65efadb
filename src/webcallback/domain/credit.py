"""What the credit gate (service layer) and billing, which implements it, say to each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    """What the credit gate allows: the longest call the account can pay for (None: unlimited)."""

    max_duration: float | None
