"""Builds the ASGI app for `webcallback run` from settings: services, engine, dispatcher."""

from __future__ import annotations

from starlette.applications import Starlette

from webcallback.config import Settings
from webcallback.service.container import build_services
from webcallback.service.maintenance import housekeeping
from webcallback.web.app import create_app


def build_app(settings: Settings) -> Starlette:
    services = build_services(settings)
    return create_app(services, lifespan_hooks=[housekeeping])
