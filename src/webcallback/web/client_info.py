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
            address = hops.pop()
            if not self.trusts(address):
                break
        return ClientInfo(address, https)
