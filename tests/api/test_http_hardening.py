"""`[server]`'s HTTP limits (web/hardening.py) over real loopback sockets against the real app
under uvicorn: slowloris, idle keep-alive, oversized and too many headers, a client gone mid-body.
Timeouts are set short so the tests are quick; the only time limits asserted are hang guards."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from tests.httpserver import RunningServer, serve
from webcallback.config import ConfigError, ServerSettings
from webcallback.service.container import Services
from webcallback.web.app import create_app
from webcallback.web.hardening import uvicorn_limits

HANG_GUARD = 30.0  # seconds: far beyond every timeout below
LIMITS = ServerSettings(header_timeout=0.5, keepalive_timeout=0.5, max_header_bytes=4096, max_headers=20)


@pytest.fixture
def hardened(services: Services) -> Iterator[RunningServer]:
    # log_config=None: uvicorn's loggers propagate to the root logger, so caplog sees them.
    with serve(create_app(services), log_config=None, **uvicorn_limits(LIMITS)) as running:
        yield running


def connect(server: RunningServer) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=HANG_GUARD)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a hang guard, not a budget)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_headers_trickled_byte_by_byte_are_cut_off(hardened: RunningServer) -> None:
    sock = connect(hardened)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 2000  # under max_header_bytes
    sent, deadline = 0, time.monotonic() + HANG_GUARD
    try:
        for byte in request:  # a byte every 20 ms: each arrives well within any per-read timeout
            sock.sendall(bytes([byte]))
            sent += 1
            time.sleep(0.02)
            assert time.monotonic() < deadline, "server never cut the trickling client off"
    except (BrokenPipeError, ConnectionResetError):
        pass
    else:
        pytest.fail("the whole trickled request was accepted")
    assert sent < len(request)
    sock.close()


def test_a_connection_that_sends_nothing_is_closed(hardened: RunningServer) -> None:
    with connect(hardened) as sock:
        assert closed_by_server(sock)


def test_idle_keep_alive_connection_is_closed_after_a_response(hardened: RunningServer) -> None:
    with connect(hardened) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200")


def test_keep_alive_connection_serves_a_second_request_in_time(hardened: RunningServer) -> None:
    with connect(hardened) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_until_closed(sock)
    assert response.count(b"HTTP/1.1 200") == 2


@pytest.mark.parametrize("complete", [True, False], ids=["whole-head", "head-still-incomplete"])
def test_oversized_headers_get_431(hardened: RunningServer, complete: bool) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192
    with connect(hardened) as sock:
        sock.sendall(head + b"\r\n\r\n" if complete else head)
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 431")


def test_too_many_headers_get_431(hardened: RunningServer) -> None:
    fields = b"".join(b"X-H%d: v\r\n" % n for n in range(LIMITS.max_headers + 1))
    with connect(hardened) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 431")


def test_as_many_headers_as_allowed_are_served(hardened: RunningServer) -> None:
    fields = b"".join(b"X-H%d: v\r\n" % n for n in range(LIMITS.max_headers - 2))  # plus Host and Connection
    with connect(hardened) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n")
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200")


def test_client_gone_mid_body_is_one_debug_line_and_no_error(
    hardened: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with connect(hardened) as sock:
        sock.sendall(
            b"POST /webcallback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"username\": "
        )
    deadline = time.monotonic() + HANG_GUARD
    while not [r for r in caplog.records if "client disconnected" in r.getMessage()]:
        assert time.monotonic() < deadline, "no line for the disconnected client"
        time.sleep(0.02)
    gone = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert [r.levelno for r in gone] == [logging.DEBUG]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_non_positive_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"server\.max_headers"):
        uvicorn_limits(replace(LIMITS, max_headers=0))
