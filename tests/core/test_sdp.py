from __future__ import annotations

from tests.core.core_helpers import ANSWER_DEST, OFFER_BACK, OFFER_DEST
from webcallback.core.sdp import Origin, blackhole_answer, lines, restamp, same_media


def test_origin_is_stable_per_leg_and_version_increases() -> None:
    a = Origin.for_leg("cb-1", "destination", "192.0.2.1")
    again = Origin.for_leg("cb-1", "destination", "192.0.2.1")
    other = Origin.for_leg("cb-1", "callback", "192.0.2.1")
    assert a == again and a.session_id != other.session_id
    first, second = a.next_line(), a.next_line()
    assert first.split()[1] == second.split()[1]
    assert int(second.split()[2]) == int(first.split()[2]) + 1
    assert first.endswith("IN IP4 192.0.2.1")
    assert Origin(1, 1, "::1").next_line().endswith("IN IP6 ::1")


def test_restamp_replaces_only_the_origin() -> None:
    origin = Origin(42, 7, "192.0.2.1")
    out = restamp(OFFER_BACK, origin)
    assert lines(out)[1] == "o=webcallback 42 8 IN IP4 192.0.2.1"
    assert [ln for ln in lines(out) if not ln.startswith("o=")] == [
        ln for ln in lines(OFFER_BACK) if not ln.startswith("o=")
    ]
    assert out.endswith("\r\n")


def test_blackhole_answer_accepts_first_codec_and_is_inactive() -> None:
    out = lines(blackhole_answer(OFFER_DEST, Origin(1, 1, "192.0.2.1")))
    assert "c=IN IP4 0.0.0.0" in out
    assert "m=audio 9 RTP/AVP 0" in out
    assert "a=rtpmap:0 PCMU/8000" in out
    assert out[-1] == "a=inactive"


def test_blackhole_refuses_unreadable_stream() -> None:
    out = lines(blackhole_answer("v=0\r\nm=video\r\n", Origin(1, 1, "h")))
    assert "m=video 0 RTP/AVP 0" in out


def test_same_media_ignores_origin() -> None:
    assert same_media(OFFER_BACK, restamp(OFFER_BACK, Origin(9, 9, "x")))
    assert not same_media(OFFER_DEST, ANSWER_DEST)
