"""A leg's SIP dialog read off its sippy `UA`, as the plain `LegDialog` a restart can end it from.

Read in the reactor thread right after a step of the leg (the INVITE sent, a 2xx received, a
re-INVITE sent), so what is stored is what the next request of the dialog would carry. The UA's
attributes read here are guarded in `_sippy.py` (ATTRIBUTES: `UA.cId`, `UA.rAddr`, ...).
"""

from __future__ import annotations

from typing import Any

from webcallback.domain import LegDialog


def read_dialog(ua: Any, local: tuple[str, int], *, confirmed: bool) -> LegDialog | None:
    """The dialog of `ua` (None before its INVITE went out). `confirmed`: a 2xx was received."""
    if ua.cId is None or ua.lUri is None or ua.rUri is None or ua.lCSeq is None:
        return None
    (host, port), transport = ua.rAddr
    # sippy keeps each INVITE it awaits a final response to, by CSeq (a challenged one is
    # replaced by its authenticated copy): the newest is the one a CANCEL must match.
    invite = ua.reqs[max(ua.reqs)] if ua.reqs else None
    here = (local, "udp")  # how sippy's `localStr` fills in our own address where it is unset
    return LegDialog(
        call_id=str(ua.cId),
        from_=ua.lUri.localStr(here),
        to=ua.rUri.localStr(here),
        cseq=int(ua.lCSeq),
        target=ua.rTarget.localStr(here) if ua.rTarget is not None else "",
        routes=tuple(route.localStr(here) for route in ua.routes or ()),
        next_hop=(str(host), int(port)),
        local=local,
        transport=str(transport or "udp").lower(),
        confirmed=confirmed,
        invite_cseq=int(invite.getHFBody("cseq").getCSeqNum()) if invite is not None else 0,
        invite_branch=_branch(invite),
        invite_uri=invite.getRURI().localStr(here) if invite is not None else "",
    )


def _branch(request: Any) -> str:
    if request is None:
        return ""
    branch = request.getHFBody("via").getBranch()
    return str(branch) if branch else ""
