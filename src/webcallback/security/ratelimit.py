"""Request-rate counters held in memory, per node.

The request-rate limits (per address, per user, per minute) are checked on every request, accepted
or not, so their cost is paid by every request; in the store they were two statements and a commit
per limit per request (~300 µs of the ~1.5 ms the path cost, BENCHMARKS.md). They only slow a flood
down, so each node counting for itself is enough: with N nodes behind a balancer a client gets at
most N times the limit. The failed-login counters that lock accounts out stay in the store, where
every node sees them (`SecurityStore.hit`).

Same estimate as the store's counters: the count of the current fixed window plus the previous
window's count weighted by how much of it still lies within the sliding window.
"""

from __future__ import annotations

MAX_KEYS = 100_000  # beyond this, windows that ended are dropped; then, if still full, everything


class SlidingWindowCounters:
    def __init__(self, window: int, max_keys: int = MAX_KEYS) -> None:
        self._window = window
        self._max_keys = max_keys
        # key -> (start of the current fixed window, its count, the previous window's count)
        self._counts: dict[str, tuple[int, int, int]] = {}

    def hit(self, key: str, now: float) -> float:
        """Count one event under `key`; return the sliding-window estimate including it."""
        window = self._window
        start = int(now // window) * window
        held = self._counts.get(key)
        if held is None:
            if len(self._counts) >= self._max_keys:
                self._evict(start)
            current, previous = 1, 0
        elif held[0] == start:
            current, previous = held[1] + 1, held[2]
        elif held[0] == start - window:
            current, previous = 1, held[1]
        else:  # idle for a whole window or more
            current, previous = 1, 0
        self._counts[key] = (start, current, previous)
        weight = 1.0 - (now - start) / window
        return current + previous * weight

    def _evict(self, start: int) -> None:
        """Forget keys whose last event is older than the previous window: their estimate is 0."""
        stale = [k for k, (s, _c, _p) in self._counts.items() if s < start - self._window]
        for key in stale:
            del self._counts[key]
        if len(self._counts) >= self._max_keys:  # a flood of distinct keys: start over
            self._counts.clear()

    def __len__(self) -> int:
        return len(self._counts)
