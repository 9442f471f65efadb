"""The one seam to sippy: every sippy name the engine uses is imported here, and every change we
make to sippy's own objects is made here, each with why, and each guarded.

sippy is pinned (pyproject), but what we patch are its internals: argument positions, attribute
names, the order of statements in a constructor. An upgrade that moved one of them would not fail,
it would quietly misroute ACKs or read the wrong clock. So `apply()` first runs `problems()`, which
compares every patched target with the shape it had when the patch was written (the version,
`inspect.signature`, attributes, and the lines of sippy's source the patch relies on), and raises
`SippyChanged` naming each difference. tests/sip/test_patches.py alters a target and sees it fail.

The patches (sippy 2.5.0):
1. `SipURL.getTAddr` — transport names lower-cased. A far end whose Contact says `;transport=UDP`
   (SIPp does, so do some phones) makes every in-dialog request fail with "unsupported transport:
   UDP": sippy compares with `'udp'` as written; the parameter is case-insensitive (RFC 3261
   §19.1.1).
2. `SipTransactionManager.newTransaction` / `.transmitReq` — the ACK of a re-INVITE follows the
   dialog's route set. sippy builds every ACK from the *response's* Record-Route, right for the
   initial INVITE but wrong inside a dialog: responses to a re-INVITE carry none, so the ACK went
   straight to the far end's Contact, past the proxy (lost behind an SBC or NAT). An in-dialog ACK
   must use the dialog's route set and remote target like the re-INVITE (RFC 3261 §13.2.2.4,
   §12.2.1.1): remembered when the re-INVITE's transaction starts, put on its ACK when sippy
   sends it (`transmitReq(t, t.ack, address, checksum)`, from `incomingResponse` or `sendACK`).
3. `sippy.Time.MonoTime.clock_getdtime` — `time.clock_gettime`. sippy reads clocks through ctypes
   (~7 µs, the GIL dropped twice per read: 18-26 % of the reactor's CPU under load,
   research/capacity.md); the same clock ids (0 realtime, 4 monotonic raw on Linux) read in C.
4. `Udp_server_opts.nworkers`, `UA.godead_timeout` — class defaults set from settings: UDP helper
   threads (3 each way by default; under the GIL one is cheaper) and how long finished UAs linger
   for retransmissions (`engine.sip.udp_workers`, `engine.sip.linger`). And `Udp_server_opts.flags`
   = 0, which does change behaviour: sippy binds with SO_REUSEADDR (and SO_REUSEPORT with several
   receivers), so a second instance on the same port bound it too and silently took half of the
   first one's replies. We bind plainly: a port in use is refused (EADDRINUSE). Our receivers
   share one socket, so nothing needs the port twice.
5. `Network_server.sendqueue` — `direct_send.DirectUdpServer` replaces it by a property, relying on
   `Network_server.__init__` assigning `self.sendqueue = Queue()` (before `Udp_server` starts its
   sender threads, which loop on `sendqueue.get()`).
6. Process-wide values the reactor sets: `SipConf.my_address`/`my_port` (our Contact and default
   From host), `ED2.my_ident` (the thread allowed to arm timers), and the transaction manager's
   `model_udp_server` (the UDP server class it builds).
7. Not a patch, a read: `engines/sip/dialogs.py` reads a UA's dialog (`cId`, `lUri`, `rUri`,
   `lCSeq`, `rTarget`, `routes`, `rAddr`, `reqs`) so that a restart can BYE it; guarded here too.
8. `Udp_server.skt` — `direct_send.DirectUdpServer` replaces it by a property that wraps the socket
   sippy creates (`self.skt = socket.socket(...)` in `Udp_server.__init__`) in
   `unreachable.ErrQueueSocket`: `IP_RECVERR` set, and the ICMP errors it then reports read from
   the error queue inside `recvfrom` (which sippy's `AsyncReceiver.run` calls as
   `self.userv.skt.recvfrom(8192)`) instead of sippy printing a traceback for each.
9. `SipTransactionManager.newTransaction` — the 408 sippy makes up when Timer B fires (no response
   at all, `t.r408`) gets a reason phrase of its own, `NO_RESPONSE_REASON`, so that a leg tells it
   from a 408 a far end sent.
10. sippy's own output, into `logging` (the `sippy` logger, so in the service's one format,
   logs.py): `Core.Exceptions.dump_exception` writes its tracebacks to the `f` it defaults to, the
   `sys.stdout` of when sippy was imported: its default becomes a writer that makes each dump one
   ERROR record (it ends every dump with `f.flush()`). And sippy `print()`s some protocol
   anomalies ("invalid status code in SIP response", "INVITE transaction stuck") from the reactor
   thread: `sys.stdout` becomes a stream that turns what the reactor thread prints into WARNING
   records (one per line printed) and passes every other thread's output through unchanged.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import sippy.Core.Exceptions as sippy_exceptions
import sippy.Time.MonoTime as monotime
from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventPreConnect,
    CCEventRedirect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.Core.EventDispatcher import ED2
from sippy.MsgBody import MsgBody
from sippy.Network_server import Network_server
from sippy.SipCallId import SipCallId
from sippy.SipConf import SipConf
from sippy.SipHeader import SipHeader
from sippy.SipRequest import SipRequest
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipURL import SipURL
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import Timeout
from sippy.UA import UA
from sippy.Udp_server import AsyncReceiver, AsyncSender, Udp_server, Udp_server_opts

from webcallback.domain import EngineError

__all__ = [
    "ED2", "UA", "CCEventConnect", "CCEventDisconnect", "CCEventFail", "CCEventPreConnect",
    "CCEventRedirect", "CCEventRing", "CCEventTry", "CCEventUpdate", "MonoTime", "MsgBody",
    "SipCallId", "SipConf", "SipHeader", "SipRequest", "SipTransactionManager", "SipURL",
    "SippyChanged", "Timeout", "Udp_server", "Udp_server_opts", "apply", "check", "monotime", "problems",
]  # fmt: skip

# (9) the reason phrase of the 408 sippy makes up when Timer B fires
NO_RESPONSE_REASON = "Request Timeout (no response)"

SIPPY_VERSION = "2.5.0"  # the version every patch below was written against
_MARK = "_webcallback_patched"


class SippyChanged(EngineError):
    """sippy no longer has the shape our patches were written for."""


# ---- the guard ---------------------------------------------------------------------------------

# target -> its parameters (names, kinds, defaults; annotations left out) when the patch was written
SIGNATURES: dict[str, str] = {
    "SipURL.getTAddr": "(self)",
    "SipTransactionManager.newTransaction": (
        "(self, msg, resp_cb=None, laddress=None, userv=None, cb_ifver=1, compact=False, t=None)"
    ),
    "SipTransactionManager.transmitReq": "(self, t, msg, *_, **__)",
    "SipTransactionManager.sendACK": "(self, t)",
    "SipTransactionManager.incomingResponse": "(self, msg, t, checksum)",
    "Network_server.__init__": "(self, uopts)",
}
# target -> lines of its source the patch relies on
SOURCE: dict[str, tuple[str, ...]] = {
    # (2) the ACK is `t.ack`, sent with the address as the first argument after the message
    "SipTransactionManager.newTransaction": ("t.ack = msg.genACK()", "t.r408 = msg.genResponse(408,"),
    # (8) the socket is made in the constructor and the receiver threads read it through `skt`
    "Udp_server.__init__": ("self.skt = socket.socket(self.uopts.family, socket.SOCK_DGRAM)",),
    "AsyncReceiver.run": ("self.userv.skt.recvfrom(8192)",),
    "SipTransactionManager.incomingResponse": ("self.transmitReq(t, t.ack, rAddr[0], checksum)",),
    "SipTransactionManager.sendACK": ("self.transmitReq(t, t.ack, t.ack_rAddr[0], t.ack_checksum)",),
    # (4) the flags decide the socket options (SO_REUSEADDR, SO_REUSEPORT)
    "Udp_server_opts.getSockOpts": ("(self.flags & socket.SO_REUSEADDR) != 0",),
    # (5) the queue is assigned in the constructor, and the sender threads take from it
    "Network_server.__init__": ("self.sendqueue = Queue()",),
    "AsyncSender.run": ("self.userv.sendqueue.get()",),
    # (10) a dump is written to `f` and ends with its flush
    "dump_exception": ("f.write(SEPT)", "f.flush()"),
}
DUMP_EXCEPTION_PARAMETERS = ("msg", "f", "extra")  # (10) `f` is the second default replaced
# (3), (4), (6): attributes we set, read or replace
ATTRIBUTES: dict[str, tuple[object, str]] = {
    "MonoTime.clock_getdtime": (monotime, "clock_getdtime"),
    "Udp_server_opts.nworkers": (Udp_server_opts, "nworkers"),
    "Udp_server_opts.flags": (Udp_server_opts, "flags"),
    "UA.godead_timeout": (UA, "godead_timeout"),
    "SipConf.my_address": (SipConf, "my_address"),
    "SipConf.my_port": (SipConf, "my_port"),
    "ED2.my_ident": (ED2, "my_ident"),
    "SipTransactionManager.model_udp_server": (SipTransactionManager, "model_udp_server"),
    **{
        f"UA.{name}": (UA, name)
        for name in ("cId", "lUri", "rUri", "lCSeq", "rTarget", "routes", "rAddr", "reqs")
    },
}


def _targets() -> dict[str, Callable[..., Any]]:
    """The patched functions as sippy has them (under our wrappers, when they are applied)."""
    found = {
        "SipURL.getTAddr": SipURL.getTAddr,
        "SipTransactionManager.newTransaction": SipTransactionManager.newTransaction,
        "SipTransactionManager.transmitReq": SipTransactionManager.transmitReq,
        "SipTransactionManager.sendACK": SipTransactionManager.sendACK,
        "SipTransactionManager.incomingResponse": SipTransactionManager.incomingResponse,
        "Network_server.__init__": Network_server.__init__,
        "AsyncSender.run": AsyncSender.run,
        "AsyncReceiver.run": AsyncReceiver.run,
        "Udp_server.__init__": Udp_server.__init__,
        "Udp_server_opts.getSockOpts": Udp_server_opts.getSockOpts,
        "dump_exception": sippy_exceptions.dump_exception,
    }
    return {name: inspect.unwrap(fn) for name, fn in found.items()}


def _parameters(fn: Callable[..., Any]) -> str:
    signature = inspect.signature(fn)
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=bare, return_annotation=inspect.Signature.empty))


def problems() -> list[str]:
    """What differs from the sippy our patches were written for; empty when nothing does."""
    found: list[str] = []
    version = importlib.metadata.version("sippy")
    if version != SIPPY_VERSION:
        found.append(f"sippy is {version}, the patches were written for {SIPPY_VERSION}")
    targets = _targets()
    for name, expected in SIGNATURES.items():
        actual = _parameters(targets[name])
        if actual != expected:
            found.append(f"{name} is now {actual}, was {expected}")
    for name, lines in SOURCE.items():
        try:
            source = inspect.getsource(targets[name])
        except (OSError, TypeError):
            found.append(f"{name}: its source cannot be read")
            continue
        found += [f"{name} no longer has `{line}`" for line in lines if line not in source]
    found += [f"{name} is gone" for name, (owner, attr) in ATTRIBUTES.items() if not hasattr(owner, attr)]
    parameters = tuple(inspect.signature(targets["dump_exception"]).parameters)
    if parameters != DUMP_EXCEPTION_PARAMETERS:
        found.append(f"dump_exception{parameters} is no longer (msg, f, extra)")
    if (monotime.CLOCK_REALTIME, monotime.CLOCK_MONOTONIC) != (time.CLOCK_REALTIME, time.CLOCK_MONOTONIC_RAW):
        found.append(
            f"sippy's clock ids are now {(monotime.CLOCK_REALTIME, monotime.CLOCK_MONOTONIC)}, "
            f"not {(time.CLOCK_REALTIME, time.CLOCK_MONOTONIC_RAW)}"
        )
    return found


def check() -> None:
    """Raise `SippyChanged` listing every difference (see `problems`)."""
    found = problems()
    if found:
        raise SippyChanged("sippy changed under our patches (engines/sip/_sippy.py): " + "; ".join(found))


# ---- applying them -----------------------------------------------------------------------------


def apply(udp_workers: int, linger: float) -> None:
    """Check, then patch (1)-(4) and (10). Call before the transaction manager is created (it
    starts the UDP threads). The method patches are applied once per process; the settings each
    time."""
    if udp_workers < 1:
        raise EngineError("engine.sip.udp_workers must be at least 1")
    if linger <= 0:
        raise EngineError("engine.sip.linger must be positive")
    if not getattr(SipURL, _MARK, False):
        check()
        _patch_transport_case()
        _patch_in_dialog_ack()
        monotime.clock_getdtime = time.clock_gettime
        _output_to_log()
        setattr(SipURL, _MARK, True)
    Udp_server_opts.nworkers = udp_workers
    Udp_server_opts.flags = 0
    UA.godead_timeout = linger


def own_timers() -> None:
    """(6) ED2 remembers the thread that imported it; timers armed elsewhere print warnings: the
    reactor thread calls this first."""
    import threading

    ED2.my_ident = threading.get_ident()


def set_local_address(host: str, port: int) -> None:
    """(6) sippy fills in our Contact and default From host from these process-wide values."""
    SipConf.my_address, SipConf.my_port = host, port


# (1)


def lower_transport(addr_and_transport: tuple[Any, Any]) -> tuple[Any, Any]:
    addr, transport = addr_and_transport
    return addr, transport.lower() if isinstance(transport, str) else transport


def _patch_transport_case() -> None:
    original = SipURL.getTAddr

    @functools.wraps(original)
    def getTAddr(self: SipURL) -> tuple[Any, Any]:
        return lower_transport(original(self))

    SipURL.getTAddr = getTAddr


# (2)


def dialog_route(request: Any) -> tuple[Any, list[Any], Any] | None:
    """(Request-URI, Route headers, next hop) of an INVITE sent inside a dialog, else None."""
    if request.getMethod() != "INVITE" or request.getHFBody("to").getTag() is None:
        return None
    return request.getRURI().getCopy(), request.getHFBCopys("route"), request.getTarget()


def reroute_ack(ack: Any, route: tuple[Any, list[Any], Any]) -> Any:
    """Point `ack` along the dialog's route set; returns the address to send it to."""
    ruri, routes, target = route
    ack.setRURI(ruri.getCopy())
    ack.delHFs("route")
    ack.appendHeaders([SipHeader(name="route", body=r.getCopy()) for r in routes])
    ack.setTarget(target)
    return target[0]


def _patch_in_dialog_ack() -> None:
    new_transaction = SipTransactionManager.newTransaction
    transmit_req = SipTransactionManager.transmitReq

    @functools.wraps(new_transaction)
    def newTransaction(self: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        t = new_transaction(self, msg, *args, **kwargs)
        t.webcallback_route = dialog_route(msg)
        if getattr(t, "r408", None) is not None:  # (9)
            t.r408.setSCode(408, NO_RESPONSE_REASON)
        return t

    @functools.wraps(transmit_req)
    def transmitReq(self: Any, t: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        route = getattr(t, "webcallback_route", None)
        if route is not None and msg is t.ack and args:
            args = (reroute_ack(msg, route), *args[1:])
        return transmit_req(self, t, msg, *args, **kwargs)

    SipTransactionManager.newTransaction = newTransaction
    SipTransactionManager.transmitReq = transmitReq


# (10)

sippy_log = logging.getLogger("sippy")
_reactor_thread = threading.local()


class LogWriter:
    """A text stream whose output becomes records of `logger`: one per flush (`per_line=False`),
    or one per line written (a write that ends a line ends a record). Buffers per thread."""

    def __init__(self, logger: logging.Logger, level: int, *, per_line: bool) -> None:
        self.logger, self.level, self.per_line = logger, level, per_line
        self._buffers = threading.local()

    def write(self, text: str) -> int:
        buffered = getattr(self._buffers, "text", "") + text
        self._buffers.text = buffered
        if self.per_line and buffered.endswith("\n"):
            self.flush()
        return len(text)

    def flush(self) -> None:
        text, self._buffers.text = getattr(self._buffers, "text", ""), ""
        if text.strip():
            self.logger.log(self.level, "%s", text.rstrip())


class ReactorPrints:
    """`sys.stdout` in a process that runs sippy: the reactor thread's output to `prints`, every
    other thread's to `stream`, as before."""

    def __init__(self, stream: Any, prints: LogWriter) -> None:
        self._stream, self._prints = stream, prints

    def write(self, text: str) -> int:
        if getattr(_reactor_thread, "marked", False):
            return self._prints.write(text)
        written: int = self._stream.write(text)
        return written

    def flush(self) -> None:
        if getattr(_reactor_thread, "marked", False):
            self._prints.flush()
        else:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _output_to_log() -> None:
    defaults = sippy_exceptions.dump_exception.__defaults__ or ()
    traceback_writer = LogWriter(sippy_log, logging.ERROR, per_line=False)
    sippy_exceptions.dump_exception.__defaults__ = (traceback_writer, *defaults[1:])
    if not isinstance(sys.stdout, ReactorPrints):
        sys.stdout = ReactorPrints(sys.stdout, LogWriter(sippy_log, logging.WARNING, per_line=True))


def prints_to_log() -> None:
    """(10) Called by the reactor thread: what it prints becomes `sippy` log records."""
    _reactor_thread.marked = True
