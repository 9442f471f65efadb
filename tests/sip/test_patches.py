"""The two sippy 2.5.0 workarounds, on sippy's own message objects (no network)."""

from __future__ import annotations

from sippy.SipRequest import SipRequest
from sippy.SipURL import SipURL

from webcallback.engines.sip import patches

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
    patches.apply()
    patches.apply()  # idempotent
    url = SipURL("sip:127.0.0.1:15071;transport=UDP")
    assert url.getTAddr() == (("127.0.0.1", 15071), "udp")
    assert patches.lower_transport(("a", "TCP")) == ("a", "tcp")
    assert patches.lower_transport(("a", None)) == ("a", None)


def test_in_dialog_invite_remembers_its_route() -> None:
    route = patches.dialog_route(_request(REINVITE))
    assert route is not None
    ruri, routes, target = route
    assert str(ruri).startswith("sip:+15550015071@127.0.0.1:15071")
    assert [str(r) for r in routes] == ["<sip:127.0.0.1:5080;lr>"]
    assert target[0] == ("127.0.0.1", 5080)


def test_initial_invite_and_other_methods_are_left_alone() -> None:
    initial = REINVITE.replace(";tag=theirs", "")
    assert patches.dialog_route(_request(initial)) is None
    bye = REINVITE.replace("INVITE sip", "BYE sip").replace("2 INVITE", "3 BYE")
    assert patches.dialog_route(_request(bye)) is None


def test_ack_is_rerouted_along_the_dialog_route() -> None:
    reinvite = _request(REINVITE)
    route = patches.dialog_route(reinvite)
    assert route is not None
    ack = reinvite.genACK()
    ack.setRURI(SipURL("sip:10.9.9.9:5099"))  # what sippy computes from the 2xx's Contact
    ack.setTarget((("10.9.9.9", 5099), "udp"))
    address = patches.reroute_ack(ack, route)
    assert address == ("127.0.0.1", 5080)
    assert ack.getTarget()[0] == ("127.0.0.1", 5080)
    assert str(ack.getRURI()).startswith("sip:+15550015071@127.0.0.1:15071")
    assert [str(r) for r in ack.getHFBodys("route")] == ["<sip:127.0.0.1:5080;lr>"]
