"""`build_app` wiring: which lifespan hooks run for which settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.dispatch.fake_engine import FakeEngine
from webcallback.domain import TelephonyEngine
from webcallback.service.container import build_services
from webcallback.web.server import build_app


def _never(_settings: object) -> TelephonyEngine:
    raise AssertionError("no engine for kind = none")


async def test_engine_none_runs_no_dispatcher_and_callbacks_stay_queued(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)  # kind = none
    app = build_app(settings, engine_factory=_never)
    services = build_services(settings)
    try:
        async with app.router.lifespan_context(app):
            queued = services.callbacks.create(
                destination="+15551230001", callback="+15559870001", username="a"
            )
            await asyncio.sleep(0.2)
        assert services.callbacks.get(queued.id).state == "queued"
    finally:
        services.close()


async def test_with_a_trunk_there_is_no_lab_and_the_dispatcher_runs_callbacks(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = make_settings(sqlite_url, ENGINE__KIND="sip", ENGINE__SIP__TRUNK="sip:127.0.0.1:9")
    engine = FakeEngine()
    app = build_app(settings, engine_factory=lambda s: engine)
    services = build_services(settings)
    try:
        async with app.router.lifespan_context(app):
            queued = services.callbacks.create(
                destination="+15551230001", callback="+15559870001", username="a"
            )
            for _ in range(300):
                if services.callbacks.get(queued.id).state == "completed":
                    break
                await asyncio.sleep(0.01)
        assert services.callbacks.get(queued.id).state == "completed"
        assert engine.started and engine.stopped
        assert "Phone lab" not in capsys.readouterr().out and not (tmp_path / "var/lab").exists()
    finally:
        services.close()
