"""The sippy seam (`engines/sip/_sippy.py`): its guard fails loudly when a patched target changes
shape; the two workarounds on sippy's own message objects; and the re-INVITE's ACK driven through
the patched transaction manager over real sockets, taking the dialog's route."""

from __future__ import annotations

import importlib.metadata
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
