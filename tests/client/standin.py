"""A STAND-IN provider web service for the client's tests. It is not the webcallback server.

A stdlib `http.server` on 127.0.0.1 (port 0) in a thread. Tests script a reply per path and read
back every request it received, so the client is tested against real HTTP on a real socket.
`digest_protected` adds an RFC 2617 Digest check (MD5, qop=auth) written with hashlib, so that
httpx's Digest client is exercised against an independent implementation.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


Route = Callable[[Recorded], Reply]


@dataclass
class StandIn:
    base_url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def reply(self, path: str, reply: Reply) -> None:
        self.routes[path] = lambda _request: reply

    def url(self, path: str) -> str:
        return self.base_url + path


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet in tests
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(self.command, self.path, list(self.headers.items()), body)
            state.requests.append(recorded)
            route = state.routes.get(recorded.path)
            reply = route(recorded) if route else Reply(404, b"no route")
            if reply.delay:
                time.sleep(reply.delay)
            self.close_connection = True
            # The client may have given up already (the timeout tests): nothing to report then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._reply(reply)

        def _reply(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def running_standin(tls: ssl.SSLContext | None = None) -> Iterator[StandIn]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    state.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _parse_digest(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header.removeprefix("Digest ").split(","):
        name, _, value = part.strip().partition("=")
        fields[name.strip()] = value.strip().strip('"')
    return fields


def digest_protected(realm: str, username: str, password: str, inner: Route) -> Route:
    """Wrap a route with an RFC 2617 Digest (MD5, qop=auth) check."""
    nonce = secrets.token_hex(8)

    def route(request: Recorded) -> Reply:
        fields = _parse_digest(request.header("Authorization") or "")
        ha1 = _md5(f"{username}:{realm}:{password}")
        ha2 = _md5(f"{request.method}:{fields.get('uri', '')}")
        expected = _md5(f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        if (
            fields.get("username") == username
            and fields.get("nonce") == nonce
            and fields.get("response") == expected
        ):
            return inner(request)
        challenge = f'Digest realm="{realm}", nonce="{nonce}", qop="auth", algorithm=MD5'
        body = b'{"message": "authentication required"}'
        return Reply(401, body, (("WWW-Authenticate", challenge), ("Content-Type", "application/json")))

    return route
