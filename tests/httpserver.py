"""A real HTTP(S) server on loopback for the tests: uvicorn in a thread on a port it binds itself
(port 0, read back once it listens), serving any ASGI app; and a self-signed certificate made on
the spot."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

START_CEILING = 300.0  # seconds: a hang guard, not a start-up budget


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(directory: Path, name: str = "localhost") -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / f"{name}.crt", directory / f"{name}.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@dataclass(frozen=True)
class RunningServer:
    url: str
    server: uvicorn.Server


@contextmanager
def serve(
    app: Any,
    *,
    certificate: Certificate | None = None,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 2048,
    **options: Any,
) -> Iterator[RunningServer]:
    """`app` under uvicorn in a thread on a free loopback port: plain HTTP, HTTPS with a
    certificate's files, or HTTPS with a ready SSLContext (e.g. a minimum TLS version).
    `options`: more `uvicorn.Config` arguments (e.g. `web.hardening.uvicorn_limits`)."""
    extra: dict[str, Any] = dict(options)
    if ssl_context is not None:
        extra["ssl_context_factory"] = lambda _config, _default: ssl_context
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        # As in `webcallback run`: the app alone decides whom to believe (server.trusted_proxies);
        # uvicorn's own proxy handling would trust X-Forwarded-* from 127.0.0.1 behind its back.
        proxy_headers=False,
        ssl_certfile=str(certificate.cert) if certificate else None,
        ssl_keyfile=str(certificate.key) if certificate else None,
        backlog=backlog,
        **extra,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_CEILING
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server did not start")
        if time.monotonic() > deadline:
            raise RuntimeError("test server hung in start-up")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if certificate or ssl_context else "http"
    try:
        yield RunningServer(f"{scheme}://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
