"""Workarounds for two sippy 2.5.0 bugs that break real calls. Applied once, before any call.

1. Upper-case transport. A far end whose Contact says `;transport=UDP` (SIPp does, and so do some
   phones) makes every in-dialog request fail with "unsupported transport: UDP", because sippy
   compares the parameter with `'udp'` as written. The parameter is case-insensitive (RFC 3261
   §19.1.1), so we lower-case it where sippy reads it.
2. The ACK to a re-INVITE bypasses the proxy. sippy builds every ACK from the *response's*
   Record-Route, which is right for the initial INVITE but wrong inside a dialog: responses to a
   re-INVITE carry no Record-Route, so the ACK went straight to the far end's Contact. Behind an
   SBC or NAT that ACK is lost. An ACK inside a dialog must use the dialog's route set and remote
   target, exactly like the re-INVITE it acknowledges (RFC 3261 §13.2.2.4, §12.2.1.1), so we
   remember those when the re-INVITE's transaction starts and put them on its ACK.
"""

from __future__ import annotations

from typing import Any

from sippy.SipHeader import SipHeader
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipURL import SipURL

_MARK = "_webcallback_patched"


def apply() -> None:
    """Idempotent; called by the reactor before it starts."""
    if getattr(SipURL, _MARK, False):
        return
    _patch_transport_case()
    _patch_in_dialog_ack()
    setattr(SipURL, _MARK, True)


# ---- 1. transport=UDP ---------------------------------------------------------------------------


def lower_transport(addr_and_transport: tuple[Any, Any]) -> tuple[Any, Any]:
    addr, transport = addr_and_transport
    return addr, transport.lower() if isinstance(transport, str) else transport


def _patch_transport_case() -> None:
    original = SipURL.getTAddr

    def getTAddr(self: SipURL) -> tuple[Any, Any]:
        return lower_transport(original(self))

    SipURL.getTAddr = getTAddr


# ---- 2. ACK of a re-INVITE ----------------------------------------------------------------------


def dialog_route(request: Any) -> tuple[Any, list[Any], Any] | None:
    """(Request-URI, Route headers, next hop) of an INVITE sent inside a dialog, else None."""
    if request.getMethod() != "INVITE" or request.getHFBody("to").getTag() is None:
        return None
    return request.getRURI().getCopy(), request.getHFBCopys("route"), request.getTarget()


def reroute_ack(ack: Any, route: tuple[Any, list[Any], Any]) -> Any:
    """Point `ack` along the dialog's route set; returns the address to send it to."""
    ruri, routes, target = route
    ack.setRURI(ruri.getCopy())
    ack.delHFs("route")
    ack.appendHeaders([SipHeader(name="route", body=r.getCopy()) for r in routes])
    ack.setTarget(target)
    return target[0]


def _patch_in_dialog_ack() -> None:
    new_transaction = SipTransactionManager.newTransaction
    transmit_req = SipTransactionManager.transmitReq

    def newTransaction(self: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        t = new_transaction(self, msg, *args, **kwargs)
        t.webcallback_route = dialog_route(msg)
        return t

    def transmitReq(self: Any, t: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        route = getattr(t, "webcallback_route", None)
        if route is not None and msg is t.ack and args:
            args = (reroute_ack(msg, route), *args[1:])
        return transmit_req(self, t, msg, *args, **kwargs)

    SipTransactionManager.newTransaction = newTransaction
    SipTransactionManager.transmitReq = transmitReq
