"""sippy's event loop in a thread of its own, shared by every SIP engine in the process.

sippy is not asyncio-based: `ED2` is one reactor per process (a 100 Hz loop created at import
time) whose timers and UA objects are not thread-safe, with UDP receive threads that hand packets
to it (sends leave from the reactor thread itself, `direct_send`). So every sippy object is
created and touched only in the reactor thread; other threads get in with `call()`
(`ED2.callFromThread`). Because there is only one ED2, the reactor is reference-counted: engines
`acquire()` it (the first starts it) and `release()` it (the last stops it), and they must all
agree on the listen address. It can be started again after a stop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from webcallback.domain import EngineError
from webcallback.engines.sip import _sippy, unreachable
from webcallback.engines.sip._sippy import ED2, SipTransactionManager, Udp_server_opts
from webcallback.engines.sip.direct_send import DirectUdpServer
from webcallback.engines.sip.in_dialog import ALLOW_HEADER

log = logging.getLogger(__name__)
sip_trace = logging.getLogger("webcallback.engines.sip.trace")

_START_TIMEOUT = 5.0


class _SipLog:
    """sippy's logger interface, sent to `logging` at DEBUG (it writes every SIP message)."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        if sip_trace.isEnabledFor(logging.DEBUG):
            sip_trace.debug("%s", "".join(str(a) for a in args).rstrip())


class _TransactionManager(SipTransactionManager):  # type: ignore[misc]
    """sippy's transaction manager on UDP servers that send from the reactor thread."""

    model_udp_server = (DirectUdpServer, Udp_server_opts)


class Reactor:
    def __init__(self, host: str, port: int, *, udp_workers: int = 1, linger: float = 32.0) -> None:
        self.host, self.port = host, port
        self.udp_workers, self.linger = udp_workers, linger
        self.config: dict[str, Any] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sippy-reactor", daemon=True)

    def start(self) -> None:
        """Blocks until the SIP port is bound (or raises `EngineError`, `SippyChanged` when sippy
        is not the shape our patches expect)."""
        _sippy.apply(self.udp_workers, self.linger)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise EngineError("the SIP reactor did not start")
        if self._error is not None:
            self._thread.join(_START_TIMEOUT)
            raise EngineError(f"cannot listen on {self.host}:{self.port}: {self._error}") from self._error

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` in the reactor thread, soon. Safe from any thread."""
        ED2.callFromThread(fn, *args)

    def stop(self) -> None:
        ED2.callFromThread(ED2.breakLoop)
        self._thread.join(_START_TIMEOUT)
        if self._thread.is_alive():
            log.warning("the SIP reactor did not stop within %.0f s", _START_TIMEOUT)

    def _run(self) -> None:
        _sippy.own_timers()
        unreachable.set_poster(ED2.callFromThread)
        _sippy.prints_to_log()
        config: dict[str, Any] = {"_sip_address": self.host, "_sip_port": self.port, "_sip_logger": _SipLog()}
        try:
            config["_sip_tm"] = _TransactionManager(config, _out_of_dialog_request)
        except Exception as exc:  # sippy raises bare Exception/OSError when the bind fails
            self._error = exc
            self._ready.set()
            return
        if self.port == 0:
            # Port 0: the kernel picked one (sippy's Udp_server records it in its laddress). It is
            # our Via and Contact from now on; tests start engines this way, with no port race.
            self.port = _bound_port(config["_sip_tm"])
            config["_sip_port"] = self.port
        _sippy.set_local_address(self.host, self.port)
        self.config = config
        self._ready.set()
        log.info("SIP engine listening on %s:%d/udp", self.host, self.port)
        try:
            ED2.loop()
        finally:
            config["_sip_tm"].shutdown()


def _bound_port(tm: Any) -> int:
    (server,) = tm.l4r.cache_l2s.values()  # one server: the listen address is not a wildcard
    port: int = server.uopts.laddress[1]
    return port


def _out_of_dialog_request(req: Any, sip_t: Any) -> tuple[Any, None, None]:
    """We only originate calls: in-dialog requests reach their UA by Call-ID; refuse the rest."""
    if req.getMethod() == "OPTIONS":
        return req.genResponse(200, "OK"), None, None
    if req.getHFBody("to").getTag() is not None:
        return req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None
    refusal = req.genResponse(405, "Method Not Allowed")
    refusal.appendHeaders(_sippy.header_fields((ALLOW_HEADER,)))  # RFC 3261 §8.2.1
    return refusal, None, None


# ---- the process-wide instance --------------------------------------------------------------

_lock = threading.Lock()
_shared: Reactor | None = None
_users = 0


def acquire(host: str, port: int, *, udp_workers: int = 1, linger: float = 32.0) -> Reactor:
    """The running reactor (started on first use, with these settings). Port 0 binds a port the
    kernel picks (then `Reactor.port`), or takes the running reactor's. Raises `EngineError` when
    it already runs on another address."""
    global _shared, _users
    with _lock:
        if _shared is None:
            reactor = Reactor(host, port, udp_workers=udp_workers, linger=linger)
            reactor.start()
            _shared = reactor
        elif _shared.host != host or port not in (0, _shared.port):
            raise EngineError(
                f"this process already runs SIP on {_shared.host}:{_shared.port}; "
                f"sippy allows one reactor per process, so {host}:{port} cannot be used too"
            )
        _users += 1
        return _shared


def listening() -> tuple[str, int] | None:
    """The address the process's reactor is bound to, while one runs."""
    with _lock:
        return (_shared.host, _shared.port) if _shared is not None else None


def release(reactor: Reactor) -> None:
    global _shared, _users
    with _lock:
        if reactor is not _shared:
            return
        _users -= 1
        if _users == 0:
            _shared = None
            reactor.stop()
