"""Admission control: refuse a callback at once when this node cannot start dialling it soon.

Without it, overload queues: requests wait in the store until their clients time out, each still
becomes a call (one nobody waits for), and the retries become duplicates. With it, a request is
accepted only if its expected wait — the callbacks queued ahead of it, beyond the free slots of
`calls.concurrency`, divided by the rate this node started callbacks over the last
`RATE_WINDOW_S` seconds — is within `calls.max_queue_wait`; otherwise `ServiceUnavailable` (503,
Retry-After), raised before anything is stored, so no call is placed for it.

The estimate is node-local: the backlog is what this node accepted and no dispatcher claimed
yet. On several nodes a node's dispatcher also claims the others' callbacks, so each node's view
is an upper bound of its own share, which errs towards refusing early rather than queueing.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from webcallback.config import CallSettings
from webcallback.errors import ServiceUnavailable

RATE_WINDOW_S = 10.0
OVERLOADED = "The service is busy, please try again in a moment."


class LoadShedder:
    def __init__(self, settings: CallSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_wait = settings.max_queue_wait
        self._concurrency = settings.concurrency
        self._clock = clock
        self._backlog = 0
        self._starts: deque[float] = deque()
        # How many callbacks the dispatcher runs now; None while no dispatcher runs here (then
        # nothing dials on this node and accepting is all it can do: `[engine] kind = "none"`).
        self._in_flight: Callable[[], int] | None = None
        self.refused = 0

    def attach(self, in_flight: Callable[[], int] | None) -> None:
        """The dispatcher, on start (and None on stop)."""
        self._in_flight = in_flight

    def queued(self, _callback: object = None) -> None:
        """A callback was accepted here (a `CallbackService` subscriber)."""
        self._backlog += 1

    def claimed(self, count: int) -> None:
        """The dispatcher started `count` callbacks."""
        now = self._clock()
        self._backlog = max(0, self._backlog - count)
        self._starts.extend([now] * count)
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self._starts and now - self._starts[0] > RATE_WINDOW_S:
            self._starts.popleft()

    def expected_wait(self) -> float:
        """Seconds the next callback would wait before it is dialled (inf: not in sight)."""
        if self._in_flight is None:
            return 0.0
        free = max(0, self._concurrency - self._in_flight())
        ahead = self._backlog + 1 - free
        if ahead <= 0:
            return 0.0
        self._forget(self._clock())
        rate = len(self._starts) / RATE_WINDOW_S
        return ahead / rate if rate > 0 else math.inf

    @property
    def shedding(self) -> bool:
        return self._max_wait > 0 and self.expected_wait() > self._max_wait

    def check(self) -> None:
        """Raise `ServiceUnavailable` when a new callback would wait longer than allowed."""
        if self._max_wait <= 0:
            return
        wait = self.expected_wait()
        if wait > self._max_wait:
            self.refused += 1
            retry = self._max_wait if math.isinf(wait) else wait - self._max_wait
            raise ServiceUnavailable(OVERLOADED, error_id="overloaded", retry_after=max(1, math.ceil(retry)))
