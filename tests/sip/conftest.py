"""Fixtures for the SIP engine tests: one sippy reactor per test process, SIPp phones, Kamailio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sip.phones import (
    BARESIP,
    KAMAILIO,
    SIPP,
    Baresip,
    Phone,
    free_udp_port,
    kamailio,
    loopback_next_hop,
)
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
    is its own process, with its own port, bound as port 0); engines made by tests share it."""
    reactor = reactor_mod.acquire("127.0.0.1", 0)
    yield f"127.0.0.1:{reactor.port}"
    reactor_mod.release(reactor)


EngineFactory = Callable[..., Awaitable[SipEngine]]


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

    yield factory
    for engine in started:
        await engine.stop()


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[..., Phone]]:
    made: list[Phone] = []

    def factory(
        scenario: str,
        ring_ms: int | None = None,
        talk_ms: int | None = None,
        knobs: dict[str, str] | None = None,
    ) -> Phone:
        # Ports are picked free, but SIPp also binds the ports next to its media port, and other
        # test processes pick ports too: on a bind failure, try other ports.
        for attempt in range(3):
            phone = Phone(scenario, free_udp_port(), free_udp_port(), tmp_path)
            made.append(phone)
            try:
                return phone.start(ring_ms=ring_ms, talk_ms=talk_ms, knobs=knobs)
            except RuntimeError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

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

    return factory


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Baresip]:
    if BARESIP is None:
        pytest.skip("baresip is not installed")
    for attempt in range(3):  # baresip also binds TCP on its port: a free UDP port may be taken
        try:
            phone = Baresip(free_udp_port(), tmp_path / f"try{attempt}").start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    yield phone
    phone.stop()
