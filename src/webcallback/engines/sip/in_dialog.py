"""How a leg answers what the far end sends inside its dialog: a final response to everything.

sippy answers BYE, CANCEL, REFER, INFO and OPTIONS itself (in its connected state) and passes a
changed re-INVITE up (the driver refuses it: relaying a far end's hold is not implemented). The
rest is answered here (RFC 3261 §8.2.1: every request gets a final response):
- a session refresh (RFC 4028): an UPDATE without a body, or a re-INVITE or UPDATE whose SDP is
  the far end's current one (or a re-INVITE without SDP): 200 with the SDP we last sent and the
  Session-Expires agreed (or 422 below our Min-SE);
- an UPDATE with new SDP: 488 (not relayed either); 491 while an offer of ours is in flight;
- INFO and OPTIONS while a re-INVITE is in flight (sippy has no handler then): 200;
- MESSAGE, NOTIFY, SUBSCRIBE, PRACK, PUBLISH, REFER there: 405, other methods 501, with `Allow`.
"""

from __future__ import annotations

from webcallback.core.sdp import same_media
from webcallback.core.session_timer import TimerPolicy, TimerTerms, answer_refresh
from webcallback.engines.sip._sippy import InDialogAnswer, InDialogRequest

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
ALLOW_HEADER = ("Allow", ALLOW)
_KNOWN = frozenset({"MESSAGE", "NOTIFY", "SUBSCRIBE", "PRACK", "PUBLISH", "REFER"})


def answer(
    req: InDialogRequest, policy: TimerPolicy | None, refreshing: bool
) -> tuple[InDialogAnswer | None, TimerTerms | None]:
    """The answer (None: let sippy answer) and, for a refresh answered 2xx, the terms agreed.
    `refreshing`: a refresh re-INVITE of ours is in flight (a crossing offer gets 491)."""
    method = req.method
    if method == "INVITE":
        if not req.idle or not _unchanged(req) or req.local_sdp is None:  # (none: 2xx not yet ACKed)
            return None, None  # sippy: 491 while it has a re-INVITE of its own, else up to the driver
        if refreshing:
            return _glare(), None
        return _refresh(req, policy)
    if req.handled:
        return None, None
    if method == "UPDATE":
        if req.body is None:
            return _refresh(req, policy)
        if refreshing or not req.idle:
            return _glare(), None
        if _unchanged(req):
            return _refresh(req, policy)
        return InDialogAnswer(code=488, reason="Not Acceptable Here", headers=(ALLOW_HEADER,)), None
    if method in ("INFO", "OPTIONS"):
        return InDialogAnswer(code=200, reason="OK", headers=(ALLOW_HEADER,)), None
    if method in _KNOWN:
        return InDialogAnswer(code=405, reason="Method Not Allowed", headers=(ALLOW_HEADER,)), None
    return InDialogAnswer(code=501, reason="Not Implemented", headers=(ALLOW_HEADER,)), None


def _unchanged(req: InDialogRequest) -> bool:
    """No SDP, or the far end's current SDP again (a refresh keeps its session version)."""
    return req.body is None or (req.remote_sdp is not None and same_media(req.body, req.remote_sdp))


def _glare() -> InDialogAnswer:
    return InDialogAnswer(code=491, reason="Request Pending")


def _refresh(req: InDialogRequest, policy: TimerPolicy | None) -> tuple[InDialogAnswer, TimerTerms | None]:
    # The SDP we last sent answers an unchanged offer, and is our offer when the request had none
    # (the ACK then brings the far end's answer, unchanged too). An UPDATE without SDP gets none.
    sdp = req.local_sdp if req.method == "INVITE" or req.body is not None else None
    if policy is None:
        return InDialogAnswer(code=200, reason="OK", sdp=sdp, headers=(ALLOW_HEADER,)), None
    agreed = answer_refresh(policy, req.session_expires, req.supports_timer)
    headers = (*agreed.headers, ALLOW_HEADER)
    reply = InDialogAnswer(code=agreed.code, reason=agreed.reason, sdp=sdp if agreed.code < 300 else None,
                           headers=headers)  # fmt: skip
    return reply, agreed.terms
