"""The suite's own start-up helpers hold on a busy machine: `webcallback run` reports the ports it
bound itself (port 0) in its ready file; PostgreSQL and Kamailio, which cannot be handed a socket,
move to another port when theirs is taken between choosing and binding it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.dispatch.service_process import running_service, service_env
from tests.pgserver import PostgresServer
from tests.sip.phones import KAMAILIO, kamailio
from webcallback.lab.phones import free_udp_port, udp_port_bound


@pytest.mark.children
def test_run_binds_port_0_and_reports_the_ports_in_its_ready_file(sqlite_url: str, tmp_path: Path) -> None:
    env = service_env(sqlite_url, ENGINE__SIP__TRUNK="sip:127.0.0.1:9")  # a trunk: no lab phones
    assert env["WEBCALLBACK_SERVER__LISTEN"].endswith(":0")
    with running_service(env, tmp_path) as service:
        http_port = int(service.url.rsplit(":", 1)[1])
        assert http_port != 0 and httpx.get(service.url + "/healthz", timeout=10).status_code == 200
        assert service.sip_listen is not None
        host, port = service.sip_listen.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) != 0 and udp_port_bound(host, int(port))
        assert service.terminate()


@pytest.mark.postgres
def test_postgres_moves_to_another_port_when_its_port_is_taken() -> None:
    server = PostgresServer()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        taken = server.port
        server.start()
        try:
            assert server.port != taken
            import psycopg

            with psycopg.connect(server.url("postgres")) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.stop()


@pytest.mark.sip
def test_kamailio_moves_to_another_port_when_its_port_is_taken(tmp_path: Path) -> None:
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed")
    taken = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", taken))
        with kamailio(tmp_path, port=taken) as port:
            assert port != taken
            assert "Address already in use" in (tmp_path / "kamailio-0.log").read_text()
