"""What `webcallback run` adds around uvicorn: refusing what would make two instances collide
(a SIP port in use, the same node id), the second signal that ends a drain, and systemd's
readiness notification (`sd_notify`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from webcallback.config import Settings
from webcallback.sd_notify import notify
from webcallback.web.listen import ReadyServer

log = logging.getLogger(__name__)


class PortInUse(Exception):
    """A port this node must own is already bound by another process."""


def check_sip_ports(settings: Settings) -> None:
    """Bind each SIP UDP port this node will use, plainly (no SO_REUSEADDR), and let it go: a port
    another process holds fails here with a message naming the setting, before anything starts.
    (The engine itself binds without SO_REUSEADDR too, so a race is refused there as well.)"""
    if settings.engine.kind != "sip":
        return
    from webcallback.domain import EngineError
    from webcallback.engines.sip.addressing import parse_hostport
    from webcallback.engines.sip.sharded import worker_count

    sip = settings.engine.sip
    try:
        listen = parse_hostport(sip.listen, 5060, "engine.sip.listen", any_port=True)
    except EngineError:
        return  # the engine refuses it at start-up, with the same message
    if listen.port == 0:
        return  # the kernel picks a free port
    count = worker_count(sip.processes)
    for port in range(listen.port, listen.port + (count if count > 1 else 1)):
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((listen.host, port))
            except OSError as exc:
                which = "" if port == listen.port else f" (SIP worker port {port})"
                raise PortInUse(
                    f"engine.sip.listen {sip.listen}{which}: cannot bind UDP {listen.host}:{port}: "
                    f"{exc.strerror} (another webcallback or SIP program on this machine?)"
                ) from None


class ServiceServer(ReadyServer):
    """uvicorn's server with the ready file (`web/listen.py`), plus:

    - a second SIGINT/SIGTERM while the service shuts down calls `hurry` (the dispatcher stops
      draining and hangs the calls up at once); a third is uvicorn's own forced exit;
    - the first signal calls `stopping` (the event streams end, else uvicorn would wait on them);
    - `READY=1` to systemd once started, `STOPPING=1` when the shutdown begins."""

    def __init__(
        self,
        config: uvicorn.Config,
        settings: Settings,
        ready_file: Path | None,
        hurry: Callable[[], None],
        stopping: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, settings, ready_file)
        self._hurry = hurry
        self._stopping = stopping
        self._hurried = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            notify("READY=1\nSTATUS=serving")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            notify("STOPPING=1\nSTATUS=stopping: draining calls (a second signal hangs them up)")
            if self._stopping is not None:  # end the event streams: uvicorn waits for open responses
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().call_soon_threadsafe(self._stopping)
        elif not self._hurried:
            self._hurried = True
            self._captured_signals.append(sig)  # uvicorn re-raises it on exit
            log.warning("second signal: ending the drain, hanging up the calls in progress")
            notify("STATUS=stopping: hanging up the calls in progress")
            try:
                asyncio.get_running_loop().call_soon_threadsafe(self._hurry)
            except RuntimeError:  # not inside the loop (cannot happen while serving)
                self._hurry()
            return
        super().handle_exit(sig, frame)
