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
11. `LegUA`, a subclass of `UA` for our legs (not a patch of sippy's class): `recvRequest` first
   offers an in-dialog request to the driver, which answers what sippy would not — every UPDATE
   (sippy leaves it unanswered, RFC 3261 §8.2.1), a session refresh re-INVITE with the
   Session-Expires back (sippy answers an unchanged re-INVITE itself, without it and without
   telling anyone), INFO/OPTIONS while a re-INVITE is in flight, 405/501 with `Allow` for the
   rest — doing sippy's own CSeq check and `rCSeq` update for the ones it takes. `recvResponse`
   shows the driver each final response to an INVITE first (Session-Expires, Allow) and retries a
   422 with the far end's Min-SE the way sippy's `processChallenge` retries a 401 (`genRequest`,
   `newUacTransaction(req, req_extra_headers=...)`, `del self.reqs[cseq]`). `send_refresh`
   sends a session refresh (UPDATE, or a re-INVITE with `lSDP`) in a transaction of its own,
   like sippy's keep-alive (`UaStateConnected.keepAlive`), the dialog staying connected.
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
from dataclasses import dataclass
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
from sippy.SipGenericHF import SipGenericHF
from sippy.SipHeader import SipHeader
from sippy.SipRequest import SipRequest
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipURL import SipURL
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import Timeout
from sippy.UA import UA
from sippy.UaStateConnected import UaStateConnected
from sippy.Udp_server import AsyncReceiver, AsyncSender, Udp_server, Udp_server_opts

from webcallback.domain import EngineError

__all__ = [
    "ED2", "UA", "CCEventConnect", "CCEventDisconnect", "CCEventFail", "CCEventPreConnect",
    "CCEventRedirect", "CCEventRing", "CCEventTry", "CCEventUpdate", "FinalResponse", "InDialogAnswer",
    "InDialogRequest", "LegUA", "MonoTime", "MsgBody", "SipCallId", "SipConf", "SipHeader", "SipRequest",
    "SipTransactionManager", "SipURL", "SippyChanged", "Timeout", "Udp_server", "Udp_server_opts",
    "apply", "check", "header_fields", "monotime", "problems", "send_refresh",
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
    # (11)
    "UA.recvRequest": "(self, req, sip_t)",
    "UA.recvResponse": "(self, resp, tr)",
    "UA.processChallenge": "(self, resp, cseq, ch_hfname, auth_hfname, extra_headers)",
    "UA.genRequest": "(self, method, body=None, cqop=None, extra_headers=None, max_forwards=None)",
    "UA.newTransaction": "(self, req, req_extra_headers=None, **kwa)",
    "SipRequest.genResponse": "(self, scode, reason, body=None, server=None, ext_reason=None)",
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
    # (11) the CSeq check we repeat, and the retry we copy
    "UA.recvRequest": ("if self.rCSeq != None and self.rCSeq >= req.getHFBody('cseq').getCSeqNum():",
                       "self.rCSeq = req.getHFBody('cseq').getCSeqNum()"),
    "UA.processChallenge": ("self.newUacTransaction(req, req_extra_headers = extra_headers)",
                            "del self.reqs[cseq]"),
    "UA.genRequest": ("self.reqs[self.lCSeq] = req", "self.lCSeq += 1"),
}  # fmt: skip
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
        for name in ("cId", "lUri", "rUri", "lCSeq", "rTarget", "routes", "rAddr", "reqs",
                     "rCSeq", "lSDP", "rSDP", "lContact", "local_ua", "state")
    },
    "UaStateConnected.recv_request_handlers": (UaStateConnected, "recv_request_handlers"),
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
        "UA.recvRequest": UA.recvRequest,
        "UA.recvResponse": UA.recvResponse,
        "UA.processChallenge": UA.processChallenge,
        "UA.genRequest": UA.genRequest,
        "UA.newTransaction": UA.newTransaction,
        "SipRequest.genResponse": SipRequest.genResponse,
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
# (11)

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class InDialogRequest:
    """A request the far end sent inside a confirmed dialog, as plain values."""

    method: str
    body: str | None
    session_expires: str | None
    supports_timer: bool  # `Supported: timer` (or `Require: timer`)
    handled: bool  # sippy's state has a handler for it (it would answer it itself)
    idle: bool  # no re-INVITE transaction of the dialog in progress on sippy's side
    local_sdp: str | None  # the SDP we last sent on the dialog
    remote_sdp: str | None  # the SDP the far end last sent


@dataclass(frozen=True, kw_only=True)
class InDialogAnswer:
    code: int
    reason: str
    sdp: str | None = None
    headers: Headers = ()


@dataclass(frozen=True, kw_only=True)
class FinalResponse:
    """A final response to an INVITE or a refresh of ours, as plain values."""

    code: int
    reason: str
    method: str
    session_expires: str | None
    min_se: str | None
    allow: frozenset[str] | None  # the methods in its Allow, None without one
    initial: bool  # to the dialog's initial INVITE (sippy's UA not yet connected)


class _Field(SipGenericHF):  # type: ignore[misc]
    """A header field spelled as we write it (sippy capitalises unknown names: `Session-expires`)."""

    def __init__(self, body: str, name: str | None = None) -> None:
        super().__init__(body)
        self.spelled = name or ""
        self.hf_names = ((name or "").lower(),)

    def getCopy(self) -> _Field:
        return _Field(self.body, self.spelled)

    def getCanName(self, name: str, compact: bool = False) -> str:
        return self.spelled


def header_fields(headers: Headers) -> tuple[Any, ...]:
    """sippy `SipHeader`s for (name, value) pairs."""
    return tuple(SipHeader(name=name, body=_Field(value, name)) for name, value in headers)


def _value(msg: Any, name: str) -> str | None:
    if msg.countHFs(name) == 0:
        return None
    return ", ".join(str(body) for body in msg.getHFBodys(name))


def _methods(msg: Any, name: str) -> frozenset[str] | None:
    value = _value(msg, name)
    if value is None:
        return None
    return frozenset(part.strip().upper() for part in value.split(",") if part.strip())


def _final(resp: Any, initial: bool) -> FinalResponse:
    code, reason = resp.getSCode()
    return FinalResponse(
        code=int(code), reason=str(reason), method=str(resp.getHFBody("cseq").getCSeq()[1]),
        session_expires=_value(resp, "session-expires") or _value(resp, "x"),
        min_se=_value(resp, "min-se"), allow=_methods(resp, "allow"), initial=initial,
    )  # fmt: skip


class LegUA(UA):  # type: ignore[misc]
    """sippy's UA for one leg of ours, with the two hooks of (11). The driver sets them."""

    on_request: Callable[[InDialogRequest], InDialogAnswer | None] | None = None
    on_final: Callable[[FinalResponse], Headers | None] | None = None  # headers: retry (422)

    def recvRequest(self, req: Any, sip_t: Any) -> Any:
        state, hook, method = self.state, self.on_request, req.getMethod()
        if hook is None or state is None or not state.connected or method in ("ACK", "BYE", "CANCEL"):
            return super().recvRequest(req, sip_t)
        cseq, last = req.getHFBody("cseq").getCSeqNum(), getattr(self, "rCSeq", None)
        if last is not None and last >= cseq:
            return super().recvRequest(req, sip_t)  # sippy answers a stale CSeq with 500
        body = req.getBody()
        timer = _methods(req, "supported") or frozenset()
        answer = hook(InDialogRequest(
            method=method, body=str(body) if body is not None and str(body).strip() else None,
            session_expires=_value(req, "session-expires") or _value(req, "x"),
            supports_timer="TIMER" in timer | (_methods(req, "require") or frozenset()),
            handled=method in state.recv_request_handlers, idle=isinstance(state, UaStateConnected),
            local_sdp=str(self.lSDP) if self.lSDP is not None else None,
            remote_sdp=str(self.rSDP) if self.rSDP is not None else None,
        ))  # fmt: skip
        if answer is None:
            return super().recvRequest(req, sip_t)
        self.rCSeq = cseq
        resp = req.genResponse(answer.code, answer.reason,
                               MsgBody(answer.sdp) if answer.sdp else None, server=self.local_ua)  # fmt: skip
        if answer.code < 300 and method in ("INVITE", "UPDATE") and self.lContact is not None:
            resp.appendHeader(SipHeader(name="contact", body=self.lContact.getCopy()))
        resp.appendHeaders(header_fields(answer.headers))
        return (resp, None, None)

    def recvResponse(self, resp: Any, tr: Any) -> None:
        hook, state = self.on_final, self.state
        code = resp.getSCode()[0]
        cseq, method = resp.getHFBody("cseq").getCSeq()
        if hook is not None and state is not None and not state.dead and method == "INVITE" and code >= 200:
            retry = hook(_final(resp, initial=not state.connected))
            if retry is not None and code == 422 and cseq in self.reqs and not state.connected:
                # after the transaction layer has ACKed the 422 (it does once we return)
                Timeout(functools.partial(self._retry_invite, state, cseq, retry), 0.0)
                return
        super().recvResponse(resp, tr)

    def _retry_invite(self, state: Any, cseq: int, headers: Headers) -> None:
        if self.state is not state or cseq not in self.reqs:  # hung up meanwhile
            return
        extra = header_fields(headers)
        req = self.genRequest("INVITE", self.lSDP, extra_headers=extra)
        self.newUacTransaction(req, req_extra_headers=extra)
        del self.reqs[cseq]


def send_refresh(ua: LegUA, method: str, headers: Headers, on_final: Callable[[FinalResponse], None]) -> None:
    """A session refresh in a transaction of its own: UPDATE without a body, or a re-INVITE with
    the SDP last sent on the dialog, unchanged (RFC 4028 §7.4). `on_final` gets its final response
    (a 408 made up by the transaction layer when nothing came)."""
    body = ua.lSDP if method == "INVITE" else None
    req = ua.genRequest(method, body, extra_headers=header_fields(headers))
    cseq = ua.lCSeq - 1

    def response(resp: Any) -> None:
        if resp.getSCode()[0] < 200:
            return
        ua.reqs.pop(cseq, None)  # genRequest keeps every INVITE for its final response
        on_final(_final(resp, initial=False))

    ua.newTransaction(req, resp_cb=response)
