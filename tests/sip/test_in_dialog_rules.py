"""Which final response each in-dialog request gets (engines/sip/in_dialog.py), without the wire."""

from __future__ import annotations

from typing import Any

import pytest

from webcallback.core.session_timer import Refresher, TimerPolicy, TimerTerms
from webcallback.engines.sip._sippy import InDialogRequest
from webcallback.engines.sip.in_dialog import ALLOW, answer

POLICY = TimerPolicy(expires=1800, min_se=90)
OURS = (
    "v=0\r\no=webcallback 1 5 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\n"
)
THEIRS = (
    "v=0\r\no=far 7 7 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
)
HOLD = THEIRS.replace("m=audio 5000 RTP/AVP 0\r\n", "m=audio 5000 RTP/AVP 0\r\na=sendonly\r\n")


def request(method: str, body: str | None = None, **kw: Any) -> InDialogRequest:
    values: dict[str, Any] = {
        "method": method, "body": body, "session_expires": None, "supports_timer": False,
        "handled": method in ("INVITE", "BYE", "INFO", "OPTIONS", "REFER"), "idle": True,
        "local_sdp": OURS, "remote_sdp": THEIRS, **kw,
    }  # fmt: skip
    return InDialogRequest(**values)


def test_a_refresh_reinvite_is_answered_with_our_sdp_and_the_timer() -> None:
    refresh = request("INVITE", THEIRS.replace(" 7 7 ", " 7 8 "), session_expires="600;refresher=uac",
                      supports_timer=True)  # fmt: skip
    reply, terms = answer(refresh, POLICY, refreshing=False)
    assert reply is not None and (reply.code, reply.sdp) == (200, OURS)
    assert reply.headers == (("Session-Expires", "600;refresher=uac"), ("Require", "timer"), ("Allow", ALLOW))
    assert terms == TimerTerms(interval=600, refresher=Refresher.PEER)


def test_a_reinvite_that_changes_the_media_or_crosses_ours_is_left_to_sippy_or_refused() -> None:
    assert answer(request("INVITE", HOLD), POLICY, refreshing=False) == (None, None)  # sippy, then 488
    assert answer(request("INVITE", THEIRS, idle=False), POLICY, refreshing=False) == (
        None,
        None,
    )  # sippy: 491
    reply, _ = answer(request("INVITE", THEIRS), POLICY, refreshing=True)
    assert reply is not None and reply.code == 491
    assert answer(request("INVITE", THEIRS, local_sdp=None), POLICY, refreshing=False) == (None, None)


@pytest.mark.parametrize(
    ("method", "body", "code"),
    [("UPDATE", None, 200), ("UPDATE", THEIRS, 200), ("UPDATE", HOLD, 488), ("MESSAGE", "hi", 405),
     ("NOTIFY", None, 405), ("PRACK", None, 405), ("FOO", None, 501)],
)  # fmt: skip
def test_what_sippy_would_leave_unanswered_gets_a_final_response(
    method: str, body: str | None, code: int
) -> None:
    reply, _ = answer(request(method, body), POLICY, refreshing=False)
    assert reply is not None and reply.code == code
    if code >= 400:
        assert ("Allow", ALLOW) in reply.headers


def test_an_update_without_sdp_refreshes_with_no_body_and_one_below_min_se_gets_422() -> None:
    reply, terms = answer(request("UPDATE"), POLICY, refreshing=False)
    assert (
        reply is not None
        and reply.sdp is None
        and reply.headers[0] == ("Session-Expires", "1800;refresher=uas")
    )
    assert terms == TimerTerms(interval=1800, refresher=Refresher.US)
    small, none = answer(request("UPDATE", session_expires="30"), POLICY, refreshing=False)
    assert small is not None and (small.code, small.headers[0], none) == (422, ("Min-SE", "90"), None)


def test_info_and_options_are_sippys_when_it_handles_them_else_ours() -> None:
    assert answer(request("INFO"), POLICY, refreshing=False) == (None, None)
    reply, _ = answer(request("INFO", handled=False, idle=False), POLICY, refreshing=False)
    assert reply is not None and reply.code == 200
    update, _ = answer(request("UPDATE", THEIRS, handled=False, idle=False), POLICY, refreshing=False)
    assert update is not None and update.code == 491
