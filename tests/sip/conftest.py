"""Fixtures for the SIP engine tests: one sippy reactor per test process, SIPp phones, Kamailio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sip.phones import KAMAILIO, SIPP, Phone, free_udp_port, kamailio, loopback_next_hop
from webcallback.config import Secret, SipSettings
from webcallback.engines.sip import SipEngine
from webcallback.engines.sip import reactor as reactor_mod


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if SIPP is None:
        skip = pytest.mark.skip(reason="sipp is not installed")
        for item in items:
            if "sip" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def sip_listen() -> Iterator[str]:
    """sippy allows one reactor per process: start it once for the session (each xdist worker
    is its own process, with its own port); engines made by tests share it."""
    port = free_udp_port()
    reactor = reactor_mod.acquire("127.0.0.1", port)
    yield f"127.0.0.1:{port}"
    reactor_mod.release(reactor)


EngineFactory = Callable[..., SipEngine]


@pytest.fixture
async def make_engine(sip_listen: str) -> AsyncIterator[EngineFactory]:
    started: list[SipEngine] = []

    async def factory(*, direct: bool = True, password: str | None = None, **settings: Any) -> SipEngine:
        secret = Secret(password) if password is not None else None
        engine = SipEngine(
            SipSettings(listen=sip_listen, password=secret, **settings),
            next_hop=loopback_next_hop if direct else None,
        )
        await engine.start()
        started.append(engine)
        return engine

    yield factory  # type: ignore[misc]
    for engine in started:
        await engine.stop()


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[..., Phone]]:
    made: list[Phone] = []

    def factory(scenario: str, ring_ms: int | None = None, talk_ms: int | None = None) -> Phone:
        phone = Phone(scenario, free_udp_port(), free_udp_port(), tmp_path)
        made.append(phone)
        return phone.start(ring_ms=ring_ms, talk_ms=talk_ms)

    yield factory
    for phone in made:
        phone.kill()


@pytest.fixture(scope="session")
def kamailio_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed")
    with kamailio(tmp_path_factory.mktemp("kamailio")) as port:
        yield port


@pytest.fixture(params=["direct", "kamailio"])
def proxy_port(request: pytest.FixtureRequest) -> int | None:
    """Run a test twice: phones reached directly, then through Kamailio as a record-routing trunk."""
    if request.param == "direct":
        return None
    port: int = request.getfixturevalue("kamailio_port")
    return port


@pytest.fixture
def routed_engine(make_engine: EngineFactory, proxy_port: int | None) -> EngineFactory:
    async def factory(**settings: Any) -> SipEngine:
        if proxy_port is None:
            return await make_engine(**settings)
        return await make_engine(direct=False, trunk=f"sip:127.0.0.1:{proxy_port}", **settings)

    return factory  # type: ignore[return-value]
