"""A database outage during requests: a real SQLite file that fills up (`max_page_count`, SQLite's
own "database or disk is full"), and a real PostgreSQL server stopped and started again. Clients
get 503 with the app's message and Retry-After, never 500; `/readyz` says not ready while `/livez`
says alive; both recover without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.api.conftest import add_account, fresh_nonce, salted
from tests.conftest import make_settings
from tests.httpserver import serve
from tests.pgserver import postgres_server
from webcallback.errors import SERVICE_UNAVAILABLE
from webcallback.service.container import Services, build_services
from webcallback.web.app import create_app

RECOVERY_CEILING = 120.0  # seconds: a hang guard while the service reconnects, not a budget


def request_callback(url: str) -> httpx.Response:
    nonce = fresh_nonce()
    params = {"username": "alice", "nonce": nonce, "hash": salted(nonce), "targetNumber": "+12025550123"}
    return httpx.get(url + "/webcallback", params=params, headers={"Accept": "application/json"}, timeout=30)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"message": SERVICE_UNAVAILABLE, "error": "service-unavailable"}
    assert int(response.headers["Retry-After"]) > 0


def wait_until(check: Any) -> None:
    deadline = time.monotonic() + RECOVERY_CEILING
    while not check():
        assert time.monotonic() < deadline, "did not recover"
        time.sleep(0.2)


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(make_settings(f"sqlite:///{tmp_path / 'webcallback.db'}"))
    add_account(built)
    yield built
    built.close()


def limit_pages(services: Services, enabled: bool) -> None:
    """Cap the file at the pages it has now on every new connection (SQLite's disk-full error on
    the next write that needs a page), or lift the cap; the pool is emptied so it takes effect."""

    def cap(dbapi_connection: Any, _record: Any) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    engine = services.db.engine
    if enabled:
        event.listen(engine, "connect", cap)
    else:
        event.remove(engine, "connect", limit_pages.cap)  # type: ignore[attr-defined]  # set below
    limit_pages.cap = cap if enabled else None  # type: ignore[attr-defined]  # the listener to remove
    engine.dispose()


def test_sqlite_disk_full_is_503_then_recovers(sqlite_services: Services) -> None:
    with serve(create_app(sqlite_services)) as server:
        assert request_callback(server.url).status_code == 200
        # Enough rows that the file's last page fills: then every request needs a new page.
        limit_pages(sqlite_services, True)
        answers = [request_callback(server.url) for _ in range(40)]
        assert {a.status_code for a in answers} <= {200, 503}
        assert_unavailable(answers[-1])
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and "database writes failing" in ready.json()["problems"]
        assert httpx.get(server.url + "/livez").status_code == 200
        limit_pages(sqlite_services, False)
        assert request_callback(server.url).status_code == 200
        wait_until(lambda: httpx.get(server.url + "/readyz").status_code == 200)


@pytest.mark.postgres
def test_postgresql_stopped_is_503_then_recovers() -> None:
    with postgres_server() as pg:
        services = build_services(make_settings(pg.create_database()))
        add_account(services)
        try:
            with serve(create_app(services)) as server:
                assert request_callback(server.url).status_code == 200
                pg.halt()
                assert_unavailable(request_callback(server.url))
                ready = httpx.get(server.url + "/readyz", timeout=30)
                assert ready.status_code == 503 and "database unreachable" in ready.json()["problems"]
                assert httpx.get(server.url + "/livez").status_code == 200
                pg.resume()
                wait_until(lambda: request_callback(server.url).status_code == 200)
                wait_until(lambda: httpx.get(server.url + "/readyz", timeout=30).status_code == 200)
        finally:
            services.close()


