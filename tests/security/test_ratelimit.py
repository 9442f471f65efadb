"""The per-node request-rate counters give the same estimates as the store's counters."""

from __future__ import annotations

import pytest

from webcallback.security.ratelimit import SlidingWindowCounters


def test_sliding_window_estimate_matches_the_store_counters() -> None:
    counters = SlidingWindowCounters(60)
    assert [counters.hit("k", 1200.0 + i) for i in range(3)] == [1, 2, 3]
    # Half way through the next window, the previous one counts half (as SecurityStore.hit).
    assert counters.hit("k", 1290.0) == pytest.approx(2.5)
    assert counters.hit("k", 1290.0) == pytest.approx(3.5)
    # Idle for more than a whole window: a fresh start.
    assert counters.hit("k", 1400.0) == 1
    assert counters.hit("other", 1400.0) == 1


def test_keys_are_independent() -> None:
    counters = SlidingWindowCounters(60)
    for _ in range(5):
        counters.hit("ip:192.0.2.1", 100.0)
    assert counters.hit("ip:192.0.2.2", 100.0) == 1
    assert counters.hit("ip:192.0.2.1", 100.0) == 6


def test_memory_is_bounded_by_dropping_ended_windows_first() -> None:
    counters = SlidingWindowCounters(60, max_keys=3)
    counters.hit("old", 0.0)
    counters.hit("a", 130.0)
    counters.hit("b", 130.0)
    counters.hit("c", 130.0)  # full: "old" (two windows ago) goes, the live ones stay
    assert len(counters) == 3
    assert counters.hit("a", 131.0) == 2
    for key in ("d", "e", "f"):  # a flood of distinct live keys: the table starts over
        counters.hit(key, 131.0)
    assert len(counters) <= 3
