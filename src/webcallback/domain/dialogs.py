"""What ending a leg needs when the process that placed it is gone: its SIP dialog, as plain data.

An engine attaches a `LegDialog` to a leg's progress (`ProgressEvent.dialog`) when the leg's
INVITE is sent (enough for a CANCEL) and again once a final 2xx made the dialog real (enough for a
BYE), and whenever its local CSeq, route set or remote target change after that. The dispatcher
stores it with the leg. After a crash, a `DialogReaper` (any node's) ends every stored dialog of a
callback that nobody runs any more (`service/records.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class LegDialog:
    """One leg's SIP dialog (or, before a 2xx, its INVITE transaction) as header values."""

    call_id: str
    from_: str  # our From header value, with our tag
    to: str  # the far end's To header value; with its tag once `confirmed`
    cseq: int  # the next local CSeq number (a BYE uses it); the INVITE's is `invite_cseq`
    target: str  # the Request-URI of the next request: the far end's Contact once confirmed
    routes: tuple[str, ...] = ()  # Route header values, in order (the reversed Record-Route)
    next_hop: tuple[str, int]  # where the next request is sent (host, port)
    local: tuple[str, int]  # our SIP address (the Via host of our requests)
    transport: str = "udp"
    confirmed: bool = False  # a 2xx was received: BYE; otherwise the INVITE is pending: CANCEL
    invite_cseq: int = 1
    invite_branch: str = ""  # the INVITE's top Via branch: a CANCEL must carry the same
    invite_uri: str = ""  # the INVITE's Request-URI: a CANCEL must carry the same

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "from": self.from_, "to": self.to, "cseq": self.cseq,
            "target": self.target, "routes": list(self.routes), "next_hop": list(self.next_hop),
            "local": list(self.local), "transport": self.transport, "confirmed": self.confirmed,
            "invite_cseq": self.invite_cseq, "invite_branch": self.invite_branch,
            "invite_uri": self.invite_uri,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LegDialog:
        host, port = data["next_hop"]
        local_host, local_port = data["local"]
        return cls(
            call_id=str(data["call_id"]), from_=str(data["from"]), to=str(data["to"]),
            cseq=int(data["cseq"]), target=str(data["target"]),
            routes=tuple(str(r) for r in data.get("routes", ())), next_hop=(str(host), int(port)),
            local=(str(local_host), int(local_port)), transport=str(data.get("transport", "udp")),
            confirmed=bool(data.get("confirmed")), invite_cseq=int(data.get("invite_cseq", 1)),
            invite_branch=str(data.get("invite_branch", "")), invite_uri=str(data.get("invite_uri", "")),
        )  # fmt: skip


class ReapResult(enum.StrEnum):
    """How ending one orphaned dialog went."""

    ENDED = "ended"  # 2xx to our BYE: the far end was still in the call until now
    GONE = "gone"  # 481 or another final response: the far end had already left the dialog
    CANCELLED = "cancelled"  # a ringing leg's INVITE was cancelled (or had already failed)
    NO_RESPONSE = "no-response"  # nothing came back before the transaction timed out (Timer F)


@dataclass(frozen=True)
class Reaped:
    result: ReapResult
    at: float  # wall clock of the far end's final response, or of giving up
    sip_code: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class DialogReaper(Protocol):
    """Ends dialogs nobody holds any more (`engines/sip/reaper.py`)."""

    async def end(self, dialogs: list[LegDialog], reason: str) -> list[Reaped]:
        """BYE (or CANCEL) each dialog, with retransmissions; one result per dialog, in order."""
        ...
