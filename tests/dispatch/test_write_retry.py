"""A call that ends while the database is out (a real PostgreSQL server halted, then started
again) is stored once the database is back: final state, legs and its concurrency slot — not
lost, not left `bridged`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import make_settings
from tests.dispatch.conftest import Harness
from tests.dispatch.fake_engine import Script
from tests.pgserver import PostgresServer, postgres_server
from webcallback.service.container import build_services
from webcallback.service.dispatcher import Dispatcher
from webcallback.store.callbacks import BRIDGED, COMPLETED

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


async def test_the_end_of_a_call_waits_out_a_postgresql_restart(own_pg: PostgresServer) -> None:
    services = build_services(make_settings(own_pg.create_database()))
    harness = Harness(services)
    harness.engine.default = Script(talk_s=1.0)
    try:
        async with Dispatcher(services, harness.engine, poll_interval=0.05, node="node-a") as dispatcher:
            queued = harness.queue()
            await harness.wait_for(queued.id, lambda cb: cb.state == BRIDGED, timeout=60)
            await asyncio.to_thread(own_pg.halt)  # the call ends while the database is out
            while harness.engine.running:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a few failed attempts to store its end
            assert dispatcher.in_flight == 1  # still holding its slot, still trying
            await asyncio.to_thread(own_pg.resume)
            final = await harness.wait_final(queued.id, timeout=120)
            assert final.state == COMPLETED
            while dispatcher.in_flight:  # its slot is freed once its finished hooks have run
                await asyncio.sleep(0.05)
            assert final.ended_at is not None and harness.finished
    finally:
        services.close()
