"""UDP sends from the reactor thread, instead of through sippy's sender thread.

sippy hands every outgoing datagram to a sender thread through a `queue.Queue`; under load the
hand-off (`Queue.put` -> `Condition.notify`, and the thread switch it causes) took ~13 % of the
reactor's GIL time in the capacity benchmark (BENCHMARKS.md). A UDP `sendto` on loopback or a LAN
costs a few microseconds, so `DirectUdpServer.send_to` sends right away with `MSG_DONTWAIT`, which
never blocks the reactor.

Nothing is dropped and order is kept: when the kernel's send buffer is full (EAGAIN/EWOULDBLOCK,
ENOBUFS) the datagram goes to sippy's queue as before, and from then on every datagram goes
there too until the sender threads have sent all of them (`SendQueue.idle`). With more than one
sender thread (`engine.sip.udp_workers` > 1) sippy itself does not keep datagrams in order.
Names that are not IP literals also take sippy's path, since resolving them could block. So does
sippy's packet loss/delay emulation.
"""

from __future__ import annotations

import errno
import logging
import queue
import socket
import threading
from typing import Any

from webcallback.engines.sip._sippy import Udp_server
from webcallback.engines.sip.unreachable import ErrQueueSocket

log = logging.getLogger(__name__)

_FULL = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)


class SendQueue(queue.Queue[Any]):
    """sippy's send queue, knowing when its sender threads have finished every datagram put.

    A sender thread loops `get()`, `sendto()`: when it comes back for the next item, the previous
    one is sent (or given up). `put_datagram` is called by the reactor thread only, `get` by the
    sender threads.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queued = 0  # written by the reactor thread only
        self.finished = 0  # written under _lock by the sender threads
        self._lock = threading.Lock()
        self._holding = threading.local()

    def idle(self) -> bool:
        """No datagram waits in the queue or is being sent by a sender thread."""
        return self.queued == self.finished

    def put_datagram(self, item: tuple[bytes, tuple[str, int]]) -> None:
        self.queued += 1
        self.put(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if getattr(self._holding, "item", False):
            self._holding.item = False
            with self._lock:
                self.finished += 1
        item = super().get(block, timeout)
        self._holding.item = item is not None  # None: sippy's shutdown marker, not a datagram
        return item


class DirectUdpServer(Udp_server):  # type: ignore[misc]
    """sippy's UDP server, sending from the calling (reactor) thread when it can."""

    _webcallback_skt: ErrQueueSocket | None = None

    # sippy's Network_server.__init__ assigns `self.sendqueue = Queue()` before Udp_server starts
    # the sender threads: the property puts a SendQueue there instead (guarded: _sippy, patch 5).
    @property
    def sendqueue(self) -> SendQueue:
        return self._webcallback_queue

    @sendqueue.setter
    def sendqueue(self, _sippys: queue.Queue[Any]) -> None:
        self._webcallback_queue = SendQueue()

    # Udp_server.__init__ assigns `self.skt = socket.socket(...)` before it binds and starts the
    # receiver threads: wrapped so that ICMP errors reach the leg they concern (unreachable.py;
    # guarded: _sippy, patch 8).
    @property
    def skt(self) -> Any:  # ErrQueueSocket once sippy made it
        return self._webcallback_skt

    @skt.setter
    def skt(self, raw: socket.socket | None) -> None:
        self._webcallback_skt = ErrQueueSocket(raw) if raw is not None else None

    def send_to(self, data: bytes | str, address: Any, delayed: bool = False) -> None:
        opts = self.uopts
        if opts.ploss_out_rate > 0.0 or opts.pdelay_out_max > 0.0:
            super().send_to(data, address, delayed)
            return
        if not isinstance(address, tuple):
            raise TypeError(f"Invalid address, not a tuple: {address!r}")
        host, port = address
        if opts.family == socket.AF_INET6 and host.startswith("["):
            host = host[1:-1]
        payload = data if isinstance(data, bytes) else data.encode("utf-8")
        direct = _is_literal(opts.family, host)
        send_or_queue(self.skt, self._webcallback_queue, payload, (host, port), direct)


def send_or_queue(
    skt: socket.socket | ErrQueueSocket, sendq: SendQueue, payload: bytes, target: Any, direct: bool = True
) -> str:
    """Send `payload` now without blocking if nothing is queued before it, else queue it for the
    sender threads. Returns "sent", "queued" or "failed" (an error other than a full buffer: given
    up, as sippy's sender does; the SIP transaction retransmits or times out)."""
    if direct and sendq.idle():
        try:
            skt.sendto(payload, socket.MSG_DONTWAIT, target)
            return "sent"
        except OSError as exc:
            if exc.errno not in _FULL:
                log.debug("sendto %s failed: %s", target, exc)
                return "failed"
    sendq.put_datagram((payload, target))
    return "queued"


_literals: dict[tuple[int, str], bool] = {}


def _is_literal(family: int, host: object) -> bool:
    if not isinstance(host, str):
        return False
    key = (family, host)
    known = _literals.get(key)
    if known is None:
        try:
            socket.inet_pton(family, host)
            known = True
        except OSError:
            known = False
        if len(_literals) < 1024:
            _literals[key] = known
    return known
