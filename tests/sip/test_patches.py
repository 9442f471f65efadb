"""The sippy seam (`engines/sip/_sippy.py`): its guard fails loudly when a patched target changes
shape; the two workarounds on sippy's own message objects; and the re-INVITE's ACK driven through
the patched transaction manager over real sockets, taking the dialog's route."""

from __future__ import annotations

import importlib.metadata
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sippy.Core.Exceptions as sippy_exceptions

from webcallback.engines.sip import _sippy
from webcallback.engines.sip import reactor as reactor_mod
from webcallback.engines.sip._sippy import SipRequest, SipTransactionManager, SipURL, Udp_server_opts

REINVITE = (
    "INVITE sip:+15550015071@127.0.0.1:15071;transport=UDP SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    "Route: <sip:127.0.0.1:5080;lr>\r\n"
    "From: <sip:+1555@example.net>;tag=ours\r\n"
    "To: <sip:+15550015071@example.net>;tag=theirs\r\n"
    "Call-ID: abc\r\n"
    "CSeq: 2 INVITE\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _request(text: str) -> SipRequest:
    request = SipRequest(text)
    request.setTarget((("127.0.0.1", 5080), "udp"))
    return request


def test_uppercase_transport_is_read_lower_case() -> None:
    _sippy.apply(Udp_server_opts.nworkers, 32.0)
    _sippy.apply(Udp_server_opts.nworkers, 32.0)  # the method patches once
    url = SipURL("sip:127.0.0.1:15071;transport=UDP")
    assert url.getTAddr() == (("127.0.0.1", 15071), "udp")
    assert _sippy.lower_transport(("a", "TCP")) == ("a", "tcp")
    assert _sippy.lower_transport(("a", None)) == ("a", None)


def test_in_dialog_invite_remembers_its_route() -> None:
    route = _sippy.dialog_route(_request(REINVITE))
    assert route is not None
    ruri, routes, target = route
    assert str(ruri).startswith("sip:+15550015071@127.0.0.1:15071")
    assert [str(r) for r in routes] == ["<sip:127.0.0.1:5080;lr>"]
    assert target[0] == ("127.0.0.1", 5080)


def test_initial_invite_and_other_methods_are_left_alone() -> None:
    initial = REINVITE.replace(";tag=theirs", "")
    assert _sippy.dialog_route(_request(initial)) is None
    bye = REINVITE.replace("INVITE sip", "BYE sip").replace("2 INVITE", "3 BYE")
    assert _sippy.dialog_route(_request(bye)) is None


def test_ack_is_rerouted_along_the_dialog_route() -> None:
    reinvite = _request(REINVITE)
    route = _sippy.dialog_route(reinvite)
    assert route is not None
    ack = reinvite.genACK()
    ack.setRURI(SipURL("sip:10.9.9.9:5099"))  # what sippy computes from the 2xx's Contact
    ack.setTarget((("10.9.9.9", 5099), "udp"))
    address = _sippy.reroute_ack(ack, route)
    assert address == ("127.0.0.1", 5080)
    assert ack.getTarget()[0] == ("127.0.0.1", 5080)
    assert str(ack.getRURI()).startswith("sip:+15550015071@127.0.0.1:15071")
    assert [str(r) for r in ack.getHFBodys("route")] == ["<sip:127.0.0.1:5080;lr>"]


# ---- the guard ---------------------------------------------------------------------------------


def test_the_installed_sippy_has_the_shape_the_patches_expect() -> None:
    assert _sippy.problems() == []
    _sippy.check()


def test_a_patched_target_with_another_signature_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def transmitReq(self: Any, t: Any, msg: Any, address: Any) -> None:
        """What an upgrade might do: the address a named argument, no more *args."""

    monkeypatch.setattr(SipTransactionManager, "transmitReq", transmitReq)
    changed = r"SipTransactionManager\.transmitReq is now \(self, t, msg, address\), was \(self, t, msg, \*_"
    with pytest.raises(_sippy.SippyChanged, match=changed):
        _sippy.check()


def test_a_target_whose_source_no_longer_sends_t_ack_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def sendACK(self: Any, t: Any) -> None:
        self.transmitReq(t, t.acknowledgement, t.ack_rAddr[0], t.ack_checksum)

    monkeypatch.setattr(SipTransactionManager, "sendACK", sendACK)
    found = _sippy.problems()
    assert found == ["SipTransactionManager.sendACK no longer has "
                     "`self.transmitReq(t, t.ack, t.ack_rAddr[0], t.ack_checksum)`"]  # fmt: skip


def test_another_version_or_a_missing_attribute_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda _name: "2.6.0")
    monkeypatch.delattr(_sippy.UA, "godead_timeout")
    found = _sippy.problems()
    assert "sippy is 2.6.0, the patches were written for 2.5.0" in found
    assert "UA.godead_timeout is gone" in found


def test_a_dump_exception_with_another_shape_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def dump_exception(msg: str, stream: Any = None, extra: Any = None) -> None:
        """What an upgrade might do: the stream renamed, and written without a final flush."""
        print(msg, file=stream)

    monkeypatch.setattr(sippy_exceptions, "dump_exception", dump_exception)
    found = _sippy.problems()
    assert "dump_exception('msg', 'stream', 'extra') is no longer (msg, f, extra)" in found
    assert "dump_exception no longer has `f.flush()`" in found


# ---- (10) sippy's output as log records ------------------------------------------------------------


def test_sippys_tracebacks_become_one_error_record_each(caplog: pytest.LogCaptureFixture) -> None:
    _sippy.apply(Udp_server_opts.nworkers, 32.0)
    with caplog.at_level(logging.INFO, logger="sippy"):
        try:
            raise ValueError("bad header")
        except ValueError:
            sippy_exceptions.dump_exception("can't parse SIP request from x", extra="GARBAGE")
    (dumped,) = [r for r in caplog.records if r.name == "sippy"]
    text = dumped.getMessage()
    assert dumped.levelno == logging.ERROR
    assert "can't parse SIP request from x" in text and "ValueError: bad header" in text and "GARBAGE" in text


class Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def test_what_the_reactor_thread_prints_becomes_records_and_other_threads_pass_through() -> None:
    stream, records = io.StringIO(), list[logging.LogRecord]()
    logger = logging.getLogger("tests.sippy-prints")
    handler = Collect(records)
    logger.addHandler(handler)
    try:
        prints = _sippy.ReactorPrints(stream, _sippy.LogWriter(logger, logging.WARNING, per_line=True))

        def reactor() -> None:
            _sippy.prints_to_log()
            print("2026-12-04 invalid status code in SIP response from 10.0.0.1:5060:", file=prints)
            print("SIP/2.0 050 Odd\r\nVia: x", file=prints)
            prints.flush()

        thread = threading.Thread(target=reactor)
        thread.start()
        thread.join()
        print("the lab's banner", file=prints)  # this thread is not marked
    finally:
        logger.removeHandler(handler)
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "2026-12-04 invalid status code in SIP response from 10.0.0.1:5060:"),
        (logging.WARNING, "SIP/2.0 050 Odd\r\nVia: x"),
    ]
    assert stream.getvalue() == "the lab's banner\n"
    assert prints.getvalue() == "the lab's banner\n"  # anything else is the stream's own


def test_a_garbage_datagram_is_logged_by_the_running_reactor(
    in_reactor: Callable[[Callable[[], Any]], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Through the real reactor: sippy cannot parse what reached its port and says so, as a
    record of the `sippy` logger (not a dump on standard output)."""
    port = in_reactor.config["_sip_port"]  # type: ignore[attr-defined]  # set by the fixture
    marker = f"NOT A SIP MESSAGE AT ALL ({threading.get_ident()})"  # sippy drops under 32 bytes
    with caplog.at_level(logging.ERROR, logger="sippy"), _udp() as peer:
        peer.sendto(f"{marker}\r\n\r\n".encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + 30  # a hang guard: the record comes as soon as the reactor runs
        while not [r for r in caplog.records if r.name == "sippy" and marker in r.getMessage()]:
            assert time.monotonic() < deadline, caplog.text[-2000:]
            time.sleep(0.01)
    (dumped,) = [r for r in caplog.records if r.name == "sippy" and marker in r.getMessage()]
    assert dumped.levelno == logging.ERROR and "can't parse SIP request from" in dumped.getMessage()


# ---- the re-INVITE's ACK over real sockets ------------------------------------------------------


@pytest.fixture
def in_reactor(sip_listen: str) -> Iterator[Callable[[Callable[[], Any]], Any]]:
    """Run a function in the (patched) SIP reactor's thread and return its result."""
    host, port = sip_listen.rsplit(":", 1)
    reactor = reactor_mod.acquire(host, int(port))

    def run(fn: Callable[[], Any]) -> Any:
        done = threading.Event()
        box: list[Any] = []

        def call() -> None:
            try:
                box.append(fn())
            finally:
                done.set()

        reactor.call(call)
        assert done.wait(30), "the reactor did not run the call"
        return box[0] if box else None

    run.config = reactor.config  # type: ignore[attr-defined]  # the reactor's sippy config, for the test
    yield run
    reactor_mod.release(reactor)


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # kept open: these sockets are the peers themselves
    sock.settimeout(30)
    return sock


COPIED_HEADERS = ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")  # from a request to its answer


def _answer_200(invite: str, contact_port: int) -> bytes:
    """A 2xx to `invite` as a far end answers a re-INVITE: its Contact, no Record-Route."""
    head = invite.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    keep = [h for h in head if h.split(":", 1)[0].lower() in COPIED_HEADERS]
    lines = ["SIP/2.0 200 OK", *keep, f"Contact: <sip:far@127.0.0.1:{contact_port}>", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_the_reinvite_ack_goes_through_the_proxy_not_to_the_contact(
    in_reactor: Callable[[Callable[[], Any]], Any],
) -> None:
    """In a dialog routed through a proxy, sippy 2.5.0 alone sends the ACK of a re-INVITE to the
    2xx's Contact; patched, it takes the dialog's route set, like the re-INVITE."""
    proxy, far_end = _udp(), _udp()
    proxy_port, far_port = proxy.getsockname()[1], far_end.getsockname()[1]
    ruri = f"sip:+15550015071@127.0.0.1:{far_port}"
    text = (
        f"INVITE {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKseam1\r\n"
        f"Route: <sip:127.0.0.1:{proxy_port};lr>\r\n"
        "From: <sip:+1555@example.net>;tag=ours\r\n"
        "To: <sip:+15550015071@example.net>;tag=theirs\r\n"
        f"Call-ID: seam-{proxy_port}\r\nCSeq: 2 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    responses: list[int] = []
    tm = in_reactor.config["_sip_tm"]  # type: ignore[attr-defined]  # set by the fixture

    def send_reinvite() -> None:
        request = SipRequest(text)
        request.setTarget((("127.0.0.1", proxy_port), "udp"))  # a loose route: the first Route
        tm.newTransaction(request, lambda resp: responses.append(resp.getSCode()[0]))

    try:
        in_reactor(send_reinvite)
        invite, engine = proxy.recvfrom(65535)
        assert invite.startswith(b"INVITE ")
        proxy.sendto(_answer_200(invite.decode(), far_port), engine)  # relayed back by the "proxy"
        ack = proxy.recv(65535).decode()
        assert ack.startswith(f"ACK {ruri} SIP/2.0"), ack
        assert f"Route: <sip:127.0.0.1:{proxy_port};lr>" in ack, ack
        assert in_reactor(lambda: list(responses)) == [200]
        far_end.setblocking(False)
        with pytest.raises(BlockingIOError):
            far_end.recv(65535)  # the one ACK went to the proxy: nothing reached the Contact
    finally:
        proxy.close()
        far_end.close()


def test_a_ua_that_no_longer_checks_cseq_as_leg_ua_does_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def recvRequest(self: Any, req: Any, sip_t: Any) -> None:
        """An upgrade that moved the CSeq check `LegUA` repeats."""

    monkeypatch.setattr(_sippy.UA, "recvRequest", recvRequest)
    found = _sippy.problems()
    assert "UA.recvRequest no longer has `self.rCSeq = req.getHFBody('cseq').getCSeqNum()`" in found


def test_header_fields_keep_their_spelling() -> None:
    fields = _sippy.header_fields((("Session-Expires", "1800;refresher=uac"), ("Min-SE", "90")))
    assert [str(f) for f in fields] == ["Session-Expires: 1800;refresher=uac", "Min-SE: 90"]
    assert [str(f.getCopy()) for f in fields] == ["Session-Expires: 1800;refresher=uac", "Min-SE: 90"]
