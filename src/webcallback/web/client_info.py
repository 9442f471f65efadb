"""Who is asking, and over what: the client address and whether the request came over HTTPS.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only from configured trusted proxies;
anyone else could write them to dodge GeoIP rules or to pass a password over plain HTTP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ClientInfo:
    address: str
    https: bool


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def trusts(self, address: str) -> bool:
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def resolve(
        self, peer: str, scheme: str, forwarded_for: str | None, forwarded_proto: str | None
    ) -> ClientInfo:
        """Walk X-Forwarded-For from the right while the hop is trusted: the first untrusted hop
        is the client. The scheme is taken from the nearest trusted proxy."""
        https = scheme == "https"
        if not self.trusts(peer):
            return ClientInfo(peer, https)
        if forwarded_proto:
            https = forwarded_proto.split(",")[-1].strip().lower() == "https"
        address = peer
        hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
        while hops:
            hop = _normalise(hops.pop())
            if hop is None:  # garbage in the header: the last hop we could read is the client
                break
            address = hop
            if not self.trusts(address):
                break
        return ClientInfo(address, https)


def _normalise(hop: str) -> str | None:
    """An X-Forwarded-For hop as a plain address (`[v6]:port` and `v4:port` forms accepted)."""
    text = hop
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
