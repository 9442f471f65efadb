"""Builds the ASGI app for `webcallback run` from settings: services, the status API, and the
lifespan hooks, in order: housekeeping; the webhook deliverer (and the event streams' bus); the phone
lab's phones (first run, no trunk); the engine and
dispatcher (`[engine] kind = "sip"`); then the lab's demo account and instructions. They stop in
reverse, so the dispatcher drains or hangs up before the engine and the lab's phones stop."""

from __future__ import annotations

from starlette.applications import Starlette

from webcallback.config import Settings
from webcallback.lab.demo import plan_lab
from webcallback.service.container import LifespanHook, build_services
from webcallback.service.maintenance import housekeeping
from webcallback.service.telephony import EngineFactory, sip_engine, telephony_hook
from webcallback.service.webhooks import webhooks_hook
from webcallback.web.app import create_app
from webcallback.web.events import EventsApi
from webcallback.web.status import StatusApi


def build_app(
    settings: Settings, *, engine_factory: EngineFactory = sip_engine, prepare: bool = False
) -> Starlette:
    """`prepare`: as `webcallback run` starts (see `build_services`); else the schema is upgraded."""
    settings, lab = plan_lab(settings)
    services = build_services(settings, prepare=prepare)
    hooks: list[LifespanHook] = [housekeeping, webhooks_hook]
    if lab is not None:
        hooks.append(lab.phones_hook)
    if settings.engine.kind != "none":
        hooks.append(telephony_hook(engine_factory))
    if lab is not None:
        hooks.append(lab.announce_hook)
    routes = [*StatusApi(services).routes(), *EventsApi(services).routes()]
    app = create_app(services, extra_routes=routes, lifespan_hooks=hooks)
    app.state.services = services  # for `webcallback run`: the second signal's stop_draining
    return app
