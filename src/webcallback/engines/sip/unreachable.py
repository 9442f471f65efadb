"""ICMP "unreachable" for the INVITEs we send: which call it hit, told to the leg that sent it.

A UDP socket that is not connected hears nothing of ICMP on Linux unless `IP_RECVERR` is set
(ip(7)). With it, each ICMP error is queued on the socket: `recvmsg(MSG_ERRQUEUE)` returns the
payload of our datagram that caused it (so its Call-ID), the original destination, and a
`sock_extended_err` with the errno (ECONNREFUSED for port unreachable, EHOSTUNREACH...). The
socket's pending error also makes the next `recvfrom`/`sendto` fail once with that errno.

`ErrQueueSocket` wraps sippy's UDP socket (installed by `direct_send.DirectUdpServer`, guarded in
`_sippy`, patch 8): its `recvfrom`, called by sippy's receiver threads, reads the error queue on
such an error and retries instead of letting sippy print a traceback. Each error found is handed
to the reactor thread, where `report` calls the leg that `watch`ed the Call-ID.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import struct
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# errnos an ICMP error (or a local routing failure) shows up as on a UDP socket
ICMP_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux; Python does not export it everywhere
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_EXTENDED_ERR = struct.Struct("=IBBBxII")  # ee_errno, origin, type, code, pad, info, data
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)

# the reactor thread's `call` (ED2.callFromThread), set when the reactor starts
_post: Callable[..., None] | None = None
_watchers: dict[str, Callable[[str], None]] = {}  # Call-ID -> the leg's callback (reactor thread)


def set_poster(post: Callable[..., None] | None) -> None:
    global _post
    _post = post


def watch(call_id: str, on_unreachable: Callable[[str], None]) -> None:
    """(reactor thread) Call `on_unreachable(why)` when an ICMP error names this Call-ID."""
    _watchers[call_id] = on_unreachable


def forget(call_id: str) -> None:
    _watchers.pop(call_id, None)


def report(call_id: str, why: str) -> None:
    """(reactor thread) One ICMP error for a datagram of `call_id`: told once to its leg."""
    callback = _watchers.pop(call_id, None)
    if callback is not None:
        callback(why)


def enable(skt: socket.socket) -> None:
    level, name = (socket.IPPROTO_IPV6, _IPV6_RECVERR) if skt.family == socket.AF_INET6 else (
        socket.IPPROTO_IP, _IP_RECVERR)  # fmt: skip
    skt.setsockopt(level, name, 1)


def drain(skt: socket.socket) -> int:
    """Read every queued error; post each to the reactor. Safe from any thread. Returns how many."""
    found = 0
    while True:
        try:
            data, ancdata, _flags, address = skt.recvmsg(2048, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return found
        except OSError as exc:
            log.debug("reading the socket's error queue failed: %s", exc)
            return found
        found += 1
        size = _EXTENDED_ERR.size
        code = next((_EXTENDED_ERR.unpack_from(d)[0] for _l, _t, d in ancdata if len(d) >= size), 0)
        why = f"{errno.errorcode.get(code, str(code))} from {_address(address)}"
        match = _CALL_ID.search(data)
        log.info("ICMP: %s (Call-ID %s)", why, match.group(1).decode(errors="replace") if match else "?")
        if match and _post is not None:
            _post(report, match.group(1).decode(errors="replace"), why)


def _address(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else "?"


class ErrQueueSocket:
    """sippy's UDP socket with `IP_RECVERR`; everything but `recvfrom`/`sendto` passes through."""

    def __init__(self, skt: socket.socket) -> None:
        self._skt = skt
        enable(skt)

    @property
    def raw(self) -> socket.socket:
        return self._skt

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        while True:
            try:
                return self._skt.recvfrom(size)
            except OSError as exc:
                if exc.errno not in ICMP_ERRNOS:
                    raise
                drain(self._skt)

    def sendto(self, data: bytes, *args: Any) -> int:
        """A pending ICMP error fails the next send once: read it, then send."""
        try:
            return self._skt.sendto(data, *args)
        except OSError as exc:
            if exc.errno not in ICMP_ERRNOS:
                raise
            drain(self._skt)
            return self._skt.sendto(data, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._skt, name)
