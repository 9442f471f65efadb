"""The SIP worker's GC policy (`worker.Collector`): survivors of a young pass are frozen out of
later passes, and the periodic full pass still finds cyclic garbage among them."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Iterator

import pytest

from webcallback.engines.sip import worker


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process's own objects back where they were


async def test_survivors_are_frozen_and_the_full_pass_frees_their_cycles(unfrozen: None) -> None:
    collector = worker.Collector(asyncio.get_running_loop())
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle, alive for now
    frozen_before = gc.get_freeze_count()
    collector.young()
    assert gc.get_freeze_count() > frozen_before  # the cycle and the rest moved out of reach
    gone = weakref.ref(a)
    del a, b  # now cyclic garbage, but frozen: ordinary passes do not see it
    gc.collect()
    assert gone() is not None
    collector.full()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # frozen again after the full pass


async def test_a_young_pass_turns_into_a_full_one_when_due(unfrozen: None) -> None:
    collector = worker.Collector(asyncio.get_running_loop(), full_every=3600.0)
    a = Node()
    a.other = a
    collector.young()
    gone = weakref.ref(a)
    del a
    collector.young()
    assert gone() is not None  # not due yet
    collector.full_every = 0.0  # engine.sip.worker_full_gc_every
    collector.young()
    assert gone() is None


async def test_a_slow_full_pass_is_a_warning(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    collector = worker.Collector(asyncio.get_running_loop())
    with caplog.at_level(logging.INFO, logger=worker.log.name):
        monkeypatch.setattr(worker, "SLOW_FULL_GC_MS", float("inf"))
        collector.full()
        monkeypatch.setattr(worker, "SLOW_FULL_GC_MS", 0.0)
        collector.full()
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]
