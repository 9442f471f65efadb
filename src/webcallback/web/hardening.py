"""HTTP hardening of `webcallback run`: the `[server]` limits, handed to uvicorn.

uvicorn enforces some natively: the keep-alive idle timeout (`timeout_keep_alive`), the size of the
request line plus headers (`h11_max_incomplete_event_size`, h11 rejects beyond it) and a connection
limit (`limit_concurrency`, 503 beyond it). It has no header read timeout (a client trickling its
headers a byte at a time, or sending nothing, holds a connection forever: slowloris) and no limit on
the number of header fields; h11's size limit holds only while the headers are incomplete (a whole
oversized head arriving in one read passes); and uvicorn answers every malformed request with 400
where h11 hints 431. `HardenedH11Protocol` adds those in one seam, a subclass of uvicorn's h11
protocol; it leans on a few of that class's attributes, checked at import (`check_uvicorn_shape`)
so an upgrade of uvicorn that moves them fails loudly instead of silently dropping the limits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from webcallback.config import ConfigError, ServerSettings

log = logging.getLogger(__name__)

# What HardenedH11Protocol touches of uvicorn's H11Protocol (0.55): methods it overrides or calls.
_UVICORN_METHODS = ("connection_made", "connection_lost", "data_received", "send_400_response")


def check_uvicorn_shape() -> None:
    """Raises if uvicorn's h11 protocol no longer looks like the one this seam was written for."""
    missing = [name for name in _UVICORN_METHODS if not callable(getattr(H11Protocol, name, None))]
    if missing:
        raise RuntimeError(f"uvicorn's H11Protocol changed (no {', '.join(missing)}); see web/hardening.py")


check_uvicorn_shape()


class LimitedConnection(h11.Connection):
    """h11's server connection refusing a request with more than `max_headers` header fields or
    a head larger than `max_header_bytes`, and remembering the status h11 hints for the last
    protocol error (431 for oversized headers)."""

    def __init__(self, max_headers: int, max_header_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self.max_headers, self.max_header_bytes = max_headers, max_header_bytes
        self.rejected_status = 400

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.rejected_status = exc.error_status_hint
            raise
        if isinstance(event, h11.Request) and (
            len(event.headers) > self.max_headers or _head_size(event) > self.max_header_bytes
        ):
            self.rejected_status = 431
            # uvicorn answers a protocol error (send_400_response) and closes the connection.
            raise h11.RemoteProtocolError("Request header fields too large", error_status_hint=431)
        return event


def _head_size(request: h11.Request) -> int:
    """The request line and header fields as sent, give or take optional whitespace."""
    line = len(request.method) + len(request.target) + len(b" HTTP/1.1\r\n") + 1
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers.raw_items())


class HardenedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header read timeout, a header count limit and a 431 answer.
    Built per settings by `protocol_class`."""

    header_timeout: float = 10.0
    max_headers: int = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.conn, h11.Connection):  # the attribute this seam replaces
            raise RuntimeError("uvicorn's H11Protocol changed (no h11 conn); see web/hardening.py")
        self.conn = LimitedConnection(self.max_headers, self.config.h11_max_incomplete_event_size or 16384)
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first bytes of a following request on a kept-alive connection start its deadline.
        if self.header_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            self._disarm_header_deadline()

    def send_400_response(self, msg: str) -> None:
        status = self.conn.rejected_status if isinstance(self.conn, LimitedConnection) else 400
        if status == 400:
            super().send_400_response(msg)
            return
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        for event in (
            h11.Response(status_code=status, headers=headers),
            h11.Data(data=b"Request header fields too large."),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self.header_deadline = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _header_timed_out(self) -> None:
        self.header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("client %s sent no complete request headers in time; closed", _peer(self.client))
            self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def protocol_class(server: ServerSettings) -> type[HardenedH11Protocol]:
    return type(
        "HardenedH11Protocol",
        (HardenedH11Protocol,),
        {"header_timeout": server.header_timeout, "max_headers": server.max_headers},
    )


def uvicorn_limits(server: ServerSettings) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.Config` that enforce `[server]`'s limits."""
    for key, value in (
        ("header_timeout", server.header_timeout),
        ("keepalive_timeout", server.keepalive_timeout),
        ("max_header_bytes", server.max_header_bytes),
        ("max_headers", server.max_headers),
        ("max_connections", server.max_connections),
    ):
        if value <= 0:
            raise ConfigError(f"server.{key}", f"must be positive (got {value})")
    return {
        "http": protocol_class(server),
        "timeout_keep_alive": server.keepalive_timeout,
        "h11_max_incomplete_event_size": server.max_header_bytes,
        "limit_concurrency": server.max_connections,
    }
