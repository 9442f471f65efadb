"""Writes that wait out a database outage instead of being lost.

A call's end (its legs, its final state, the CDR, the settlement, its concurrency slot) must reach
the store even when the database is briefly out — a full disk, a PostgreSQL restart. Lost, the
callback would stay `bridged` with its credit reserved until the next restart. So the dispatcher
retries such a write with exponential backoff until it is stored; each retrying callback keeps its
slot (memory stays bounded by `calls.concurrency`), and errors that are not an outage (a bug) are
not retried. Cancellation (a shutdown that hangs up) ends the wait; what is still unwritten then is
marked `interrupted` by the next start's recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from webcallback.store.db import OUTAGE_ERRORS, outage_summary

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.2  # seconds
MAX_DELAY = 15.0


async def until_stored(
    write: Callable[[], Awaitable[T]],
    what: str,
    *,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> T:
    """`await write()` until it does not fail with a database outage."""
    delay = first_delay
    attempt = 1
    while True:
        try:
            result = await write()
        except OUTAGE_ERRORS as exc:
            # One line on the first failure, then one per retry once the wait is at its longest.
            if attempt == 1 or delay >= max_delay:
                log.warning("%s: database unavailable (%s); retrying", what, outage_summary(exc))
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)
            attempt += 1
            continue
        if attempt > 1:
            log.info("%s: stored after %d attempts", what, attempt)
        return result
