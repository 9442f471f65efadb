"""The HTTP socket of `webcallback run`, bound before the app is built, and its ready file.

Bound first, so that `server.listen` with port 0 (the kernel picks a free port) is resolved before
anything reads it: the lab's printed commands and provisioning's derived URL name the real port.
uvicorn then serves on that socket. With `--ready-file`, once the app has started (lifespan: store,
engine, dispatcher) and accepts connections, the bound addresses are written to the file, whole
(renamed into place): `{"http": "host:port", "sip": "host:port" | null, "pid": n}`. A supervisor or
a test waits for the file instead of polling with a timeout, and learns the ports port 0 picked.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import replace
from pathlib import Path

import uvicorn

from webcallback.config import Settings
from webcallback.service.telephony import sip_listening

log = logging.getLogger(__name__)


class ListenError(Exception):
    """The HTTP address cannot be bound."""


def bind_http(settings: Settings, host: str, port: int) -> tuple[socket.socket, Settings]:
    """The bound (not yet listening) socket, and the settings with `server.listen` naming its port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {settings.server.listen}: {exc.strerror}") from None
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    listen = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    log.info("HTTP on %s://%s", "https" if settings.server.tls_cert else "http", listen)
    return sock, replace(settings, server=replace(settings.server, listen=listen))


def write_ready_file(path: Path, settings: Settings) -> None:
    sip = sip_listening()
    body = {"http": settings.server.listen, "sip": f"{sip[0]}:{sip[1]}" if sip else None, "pid": os.getpid()}
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(body) + "\n")
    temporary.replace(path)


class ReadyServer(uvicorn.Server):
    """uvicorn's server, writing the ready file (if any) after its start-up: lifespan, then listen."""

    def __init__(self, config: uvicorn.Config, settings: Settings, ready_file: Path | None) -> None:
        super().__init__(config)
        self.settings, self.ready_file = settings, ready_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.ready_file is not None:
            write_ready_file(self.ready_file, self.settings)
