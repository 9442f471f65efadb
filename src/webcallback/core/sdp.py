"""The little SDP the controller writes: restamped offers and black-hole answers. Pure text in/out.

We never originate media, we only carry one far end's SDP to the other. RFC 3264 §8 still holds
us to one `o=` line per dialog whose version goes up by one with every SDP we send on it, so each
leg owns an `Origin`. The session id is derived from the callback id and the leg, which keeps the
core deterministic (and the tests exact) without a random source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CRLF = "\r\n"


def lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]


def join(sdp_lines: list[str]) -> str:
    return CRLF.join(sdp_lines) + CRLF


@dataclass
class Origin:
    """Our `o=` line towards one leg; `next_line()` bumps the version each time it is used."""

    session_id: int
    version: int
    address: str

    @classmethod
    def for_leg(cls, callback_id: str, leg: str, address: str) -> Origin:
        digest = hashlib.sha256(f"{callback_id}/{leg}".encode()).digest()
        session_id = int.from_bytes(digest[:6], "big")
        return cls(session_id=session_id, version=session_id % 1000, address=address)

    def next_line(self) -> str:
        self.version += 1
        family = "IP6" if ":" in self.address else "IP4"
        return f"o=webcallback {self.session_id} {self.version} IN {family} {self.address}"


def restamp(sdp: str, origin: Origin) -> str:
    """`sdp` with our `o=` line for this leg (added after `v=` if the far end sent none)."""
    out = [line for line in lines(sdp) if not line.startswith("o=")]
    at = 1 if out and out[0].startswith("v=") else 0
    out.insert(at, origin.next_line())
    return join(out)


def blackhole_answer(offer: str, origin: Origin) -> str:
    """An answer that accepts the first codec of each offered stream but sends and receives nothing.

    `c=0.0.0.0` plus `a=inactive` keeps the answered party on hold (RFC 3725 Flow III) until the
    other leg's SDP arrives in a re-INVITE. A stream we cannot read (no payload types) is refused
    with port 0, as RFC 3264 §6 requires an m= line per offered stream.
    """
    offer_lines = lines(offer)
    rtpmaps = {ln[9:].split(" ", 1)[0]: ln for ln in offer_lines if ln.startswith("a=rtpmap:")}
    out = ["v=0", origin.next_line(), "s=-", "c=IN IP4 0.0.0.0", "t=0 0"]
    for line in offer_lines:
        if line.startswith("m="):
            out.extend(_blackhole_stream(line, rtpmaps))
    return join(out)


def _blackhole_stream(m_line: str, rtpmaps: dict[str, str]) -> list[str]:
    fields = m_line[2:].split()
    if len(fields) < 4:
        media = fields[0] if fields else "audio"
        proto = fields[2] if len(fields) > 2 else "RTP/AVP"
        return [f"m={media} 0 {proto} 0"]
    media, _port, proto, payload = fields[0], fields[1], fields[2], fields[3]
    out = [f"m={media} 9 {proto} {payload}"]
    if payload in rtpmaps:
        out.append(rtpmaps[payload])
    out.append("a=inactive")
    return out


def same_media(a: str, b: str) -> bool:
    """True when two SDPs differ at most in their `o=` line (a far end's 183 and 200 usually match)."""
    return _without_origin(a) == _without_origin(b)


def _without_origin(sdp: str) -> list[str]:
    return [line.strip() for line in lines(sdp) if not line.startswith("o=")]
