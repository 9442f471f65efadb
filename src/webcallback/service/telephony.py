"""The telephony lifespan: the engine and the dispatcher that drives it, started and stopped with
the web app (a `create_app` lifespan hook).

Start: engine, then dispatcher (which first fails what a crash left in flight, then takes work).
Stop (uvicorn's lifespan shutdown, on SIGTERM/SIGINT): the dispatcher stops taking work and drains
or hangs up (`calls.shutdown`), then the engine stops. `[engine] kind = "none"` has no telephony:
callbacks are accepted and stay `queued` until a node with an engine takes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from webcallback.config import Settings
from webcallback.domain import DialogReaper, TelephonyEngine
from webcallback.service.container import LifespanHook, Services
from webcallback.service.dispatcher import Dispatcher

EngineFactory = Callable[[Settings], TelephonyEngine]


def sip_engine(settings: Settings) -> TelephonyEngine:
    from webcallback.engines.sip import create_engine  # imports sippy: only when the engine is used

    return create_engine(settings.engine.sip)


def sip_reaper(settings: Settings) -> DialogReaper:
    """What hangs up the SIP legs a crashed process left (`engines/sip/reaper.py`)."""
    from webcallback.engines.sip.reaper import create_reaper

    return create_reaper(settings.engine.sip)


def sip_listening() -> tuple[str, int] | None:
    """The address this process's SIP engine is bound to (its port when configured as 0), or None
    when none runs here (`[engine] kind = "none"`, or the engine's worker processes have it)."""
    import sys

    if "webcallback.engines.sip.reactor" not in sys.modules:  # never imports sippy just to ask
        return None
    from webcallback.engines.sip.reactor import listening

    return listening()


def telephony_hook(factory: EngineFactory = sip_engine, **dispatcher_options: float) -> LifespanHook:
    @contextlib.asynccontextmanager
    async def telephony(services: Services) -> AsyncIterator[None]:
        engine = factory(services.settings)
        await engine.start()
        # SIP worker processes up (`processes` > 1), else 1 while the in-process engine runs.
        workers_up = getattr(engine, "workers_up", lambda: 1)
        services.metrics.watch_sip_workers(workers_up)
        services.health.watch_engine(lambda: bool(workers_up()))
        try:
            reaper = sip_reaper(services.settings) if services.settings.engine.kind == "sip" else None
            async with Dispatcher(services, engine, reaper=reaper, **dispatcher_options):  # type: ignore[arg-type]
                yield
        finally:
            services.metrics.watch_sip_workers(lambda: 0)
            services.health.watch_engine(None)
            await engine.stop()

    return telephony
