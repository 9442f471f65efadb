"""Fixtures for the dispatcher tests: services on a fresh database, a fake engine, helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.dispatch.fake_engine import FakeEngine
from webcallback.domain import CallOutcome
from webcallback.service.container import Services, build_services
from webcallback.store.callbacks import FINAL_STATES, Callback


class Harness:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.engine = FakeEngine()
        self.finished: list[tuple[Callback, CallOutcome]] = []

        async def hook(callback: Callback, outcome: CallOutcome) -> None:
            self.finished.append((callback, outcome))

        services.on_callback_finished.append(hook)

    def queue(self, destination: str = "+15551230001", **values: Any) -> Callback:
        values.setdefault("callback", "+15559870001")
        values.setdefault("username", "alice")
        return self.services.callbacks.create(destination=destination, **values)

    async def wait_final(self, callback_id: str, timeout: float = 5.0) -> Callback:
        return await self.wait_for(callback_id, lambda cb: cb.state in FINAL_STATES, timeout)

    async def wait_for(
        self, callback_id: str, cond: Callable[[Callback], bool], timeout: float = 5.0
    ) -> Callback:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            callback = self.services.callbacks.get(callback_id)
            if cond(callback):
                return callback
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"callback {callback_id} stuck in {callback.state}")
            await asyncio.sleep(0.01)


@pytest.fixture
def settings_env() -> dict[str, str]:
    """Extra settings for `harness`; tests change it before asking for the harness."""
    return {}


@pytest.fixture
async def harness(db_url: str, settings_env: dict[str, str]) -> AsyncIterator[Harness]:
    services = build_services(make_settings(db_url, **settings_env))
    try:
        yield Harness(services)
    finally:
        services.close()
