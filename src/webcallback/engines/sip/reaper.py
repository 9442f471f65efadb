"""Ending SIP dialogs that no process holds any more (after a crash), without sippy.

A restart (or, later, another node) has only what the dead process stored: each leg's
`LegDialog`. For a leg that was up it sends an in-dialog BYE (RFC 3261 §15.1.1) built from it; for
one still ringing, a CANCEL matching the pending INVITE (§9.1: same Request-URI, Call-ID, From,
To without the far end's tag, CSeq number and top Via branch). Each request is retransmitted on
Timer E (T1 = 0.5 s doubling to T2 = 4 s) until a final response or Timer F (64·T1 = 32 s).

It runs on a socket of its own (the engine may be another process, or not started yet), on the
engine's address with an ephemeral port; the Via carries `rport` so the far end answers where the
request came from (RFC 3581). A far end that answers the dead process's port instead still gets
the BYE: it is only our wait for its answer that runs out (`ReapResult.NO_RESPONSE`).

A BYE carries `Reason: Q.850;cause=41` ("temporary failure", RFC 3326) with the reason's text.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from dataclasses import dataclass, field

from webcallback.config import SipSettings
from webcallback.domain import LegDialog, Reaped, ReapResult
from webcallback.engines.sip.addressing import parse_hostport

log = logging.getLogger(__name__)

T1, T2 = 0.5, 4.0
TIMER_F = 64 * T1
USER_AGENT = "webcallback"
_TAG = re.compile(r";\s*tag=[^;>]*", re.I)


def bye_request(dialog: LegDialog, via: tuple[str, int], branch: str, reason: str) -> bytes:
    lines = [
        f"BYE {dialog.target} SIP/2.0",
        f"Via: SIP/2.0/UDP {_hostport(via)};branch={branch};rport",
        *(f"Route: {route}" for route in dialog.routes),
        "Max-Forwards: 70",
        f"From: {dialog.from_}",
        f"To: {dialog.to}",
        f"Call-ID: {dialog.call_id}",
        f"CSeq: {dialog.cseq} BYE",
        f'Reason: Q.850;cause=41;text="{_quoted(reason)}"',
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def cancel_request(dialog: LegDialog, reason: str) -> bytes:
    """The CANCEL of the pending INVITE: its Via (sent-by and branch) as the INVITE had it."""
    lines = [
        f"CANCEL {dialog.invite_uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {_hostport(dialog.local)};branch={dialog.invite_branch};rport",
        *(f"Route: {route}" for route in dialog.routes),
        "Max-Forwards: 70",
        f"From: {dialog.from_}",
        f"To: {_TAG.sub('', dialog.to)}",
        f"Call-ID: {dialog.call_id}",
        f"CSeq: {dialog.invite_cseq} CANCEL",
        f'Reason: Q.850;cause=41;text="{_quoted(reason)}"',
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _hostport(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "")


_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_HEADER = {b"call-id": re.compile(rb"^(?:call-id|i)\s*:\s*(.+?)\s*$", re.I | re.M),
           b"cseq": re.compile(rb"^cseq\s*:\s*(\d+)\s+(\w+)", re.I | re.M)}  # fmt: skip


def parse_response(data: bytes) -> tuple[int, str, int, str] | None:
    """(status, Call-ID, CSeq number, CSeq method) of a response; None for anything else."""
    status = _STATUS.match(data)
    call_id = _HEADER[b"call-id"].search(data)
    cseq = _HEADER[b"cseq"].search(data)
    if status is None or call_id is None or cseq is None:
        return None
    return int(status.group(1)), call_id.group(1).decode(errors="replace"), int(cseq.group(1)), \
        cseq.group(2).decode().upper()  # fmt: skip


@dataclass
class _Pending:
    dialog: LegDialog
    method: str
    cseq: int
    done: asyncio.Future[Reaped] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, pending: dict[tuple[str, int, str], _Pending]) -> None:
        self.pending = pending

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        parsed = parse_response(data)
        if parsed is None:
            return
        code, call_id, cseq, method = parsed
        waiting = self.pending.get((call_id, cseq, method))
        if waiting is None or waiting.done.done() or code < 200:
            return
        if method == "BYE":
            result = ReapResult.ENDED if code < 300 else ReapResult.GONE
        else:
            result = ReapResult.CANCELLED
        waiting.done.set_result(Reaped(result, time.time(), code))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: retransmissions go on
        log.debug("dialog reaper: %s", exc)


class SipReaper:
    """`DialogReaper` over UDP; bound to `host` (the engine's address), port chosen by the kernel."""

    def __init__(self, host: str, *, timer_f: float = TIMER_F) -> None:
        self.host = host
        self.timer_f = timer_f

    async def end(self, dialogs: list[LegDialog], reason: str) -> list[Reaped]:
        if not dialogs:
            return []
        loop = asyncio.get_running_loop()
        pending: dict[tuple[str, int, str], _Pending] = {}
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(pending), local_addr=(self.host, 0)
        )
        try:
            via = transport.get_extra_info("sockname")[:2]
            jobs = []
            for dialog in dialogs:
                if dialog.confirmed:
                    job = _Pending(dialog, "BYE", dialog.cseq)
                    message = bye_request(dialog, via, "z9hG4bK" + secrets.token_hex(10), reason)
                else:
                    job = _Pending(dialog, "CANCEL", dialog.invite_cseq)
                    message = cancel_request(dialog, reason)
                pending[(dialog.call_id, job.cseq, job.method)] = job
                jobs.append(self._send(transport, job, message))
            return list(await asyncio.gather(*jobs))
        finally:
            transport.close()

    async def _send(self, transport: asyncio.DatagramTransport, job: _Pending, message: bytes) -> Reaped:
        """Timer E retransmissions until a final response or Timer F."""
        log.info("dialog %s: %s to %s:%d", job.dialog.call_id, job.method, *job.dialog.next_hop)
        interval, waited = T1, 0.0
        while waited < self.timer_f:
            transport.sendto(message, job.dialog.next_hop)
            try:
                return await asyncio.wait_for(asyncio.shield(job.done), min(interval, self.timer_f - waited))
            except TimeoutError:
                waited += interval
                interval = min(2 * interval, T2)
        return Reaped(ReapResult.NO_RESPONSE, time.time())


def create_reaper(settings: SipSettings) -> SipReaper:
    """On the engine's own address (what the trunk accepts requests from)."""
    return SipReaper(parse_hostport(settings.listen, 5060, "engine.sip.listen", any_port=True).host)
