"""Sends from the reactor thread (`direct_send`), on real sockets: sent at once when nothing is
queued, queued behind a full buffer, and never reordered."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from webcallback.engines.sip._sippy import Udp_server_opts
from webcallback.engines.sip.direct_send import DirectUdpServer, SendQueue, send_or_queue


def _drain(sock: socket.socket, sendq: SendQueue) -> None:
    """What sippy's sender thread does: take from the queue, send blocking."""
    while (item := sendq.get()) is not None:
        sock.sendto(*item)


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[DirectUdpServer]:
    # one sender thread, as the engine runs it (engine.sip.udp_workers); more senders reorder.
    # sippy copies its options without this field: it must be set on the class.
    monkeypatch.setattr(Udp_server_opts, "nworkers", 1)
    udp = DirectUdpServer({}, Udp_server_opts(("127.0.0.1", 0), lambda *args: None))
    yield udp
    udp.shutdown()


def test_a_datagram_is_sent_from_the_calling_thread(server: DirectUdpServer, receiver: socket.socket) -> None:
    server.send_to("OPTIONS sip:x SIP/2.0\r\n\r\n", receiver.getsockname())
    data, source = receiver.recvfrom(2048)
    assert data == b"OPTIONS sip:x SIP/2.0\r\n\r\n"
    assert source == server.skt.getsockname()  # from sippy's own socket, our Via and Contact
    assert server.sendqueue.queued == 0  # not through the sender thread


def test_a_name_goes_through_the_sender_and_nothing_overtakes_it(
    server: DirectUdpServer, receiver: socket.socket
) -> None:
    port = receiver.getsockname()[1]
    server.send_to(b"0", ("localhost", port))  # not an IP literal: sippy's sender resolves it
    for i in range(1, 200):
        server.send_to(str(i).encode(), ("127.0.0.1", port))
    received = [int(receiver.recv(64)) for _ in range(200)]
    assert received == list(range(200))
    assert server.sendqueue.queued >= 1
    # the sender thread counts a datagram as finished when it comes back for the next one
    deadline = time.monotonic() + 5
    while not server.sendqueue.idle():
        assert time.monotonic() < deadline, "the sender never finished its queue"
        time.sleep(0.01)
    server.send_to(b"200", ("127.0.0.1", port))
    assert receiver.recv(64) == b"200"
    assert server.sendqueue.queued == server.sendqueue.finished  # sent directly again


def test_a_full_buffer_falls_back_to_the_queue_in_order() -> None:
    # A UDP send on loopback never finds its buffer full (the kernel drops at the receiver
    # instead), so a Unix datagram socket stands in: its sender gets EAGAIN once the receiver
    # holds max_dgram_qlen unread datagrams.
    name = f"\0webcallback-direct-send-{os.getpid()}"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(name)
        rx.settimeout(5)
        sendq = SendQueue()
        sender = threading.Thread(target=_drain, args=(tx, sendq), daemon=True)
        sender.start()
        results = [send_or_queue(tx, sendq, str(i).encode(), name) for i in range(300)]
        assert results[0] == "sent"
        first_queued = results.index("queued")  # the buffer filled up: EAGAIN, not an error
        assert "failed" not in results
        assert set(results[first_queued:]) == {"queued"}  # none jumps the queue while it drains
        received = [int(rx.recv(64)) for _ in range(300)]
        assert received == list(range(300))
        sendq.put(None)
        sender.join(5)
        assert sendq.idle()
        assert send_or_queue(tx, sendq, b"300", name) == "sent"  # drained: direct again
        assert rx.recv(64) == b"300"


def test_other_errors_are_given_up_not_queued(server: DirectUdpServer) -> None:
    sendq = SendQueue()
    huge = b"x" * 70000  # larger than any UDP datagram: EMSGSIZE
    assert send_or_queue(server.skt, sendq, huge, ("127.0.0.1", 9)) == "failed"
    assert sendq.queued == 0
