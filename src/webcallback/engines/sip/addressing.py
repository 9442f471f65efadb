"""Where SIP goes: the listen address, the trunk, and the next hop of each leg. Pure parsing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from webcallback.domain import EngineError

NextHop = Callable[[str], tuple[str, int]]  # E.164 number -> (host, port) the INVITE is sent to

# `engine.sip.trunk` unset: the loopback phone lab's proxy (Kamailio) is the trunk.
LAB_TRUNK = "sip:127.0.0.1:5080"


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_hostport(
    text: str, default_port: int = 5060, what: str = "address", *, any_port: bool = False
) -> HostPort:
    """`host`, `host:port`, `[v6]:port`; raises `EngineError` naming `what`. `any_port`: port 0
    (bind one the kernel picks) is allowed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise EngineError(f"{what}: bad IPv6 address {text!r}")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise EngineError(f"{what}: no host in {text!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise EngineError(f"{what}: bad port in {text!r}") from None
    if not (0 if any_port else 1) <= port < 65536:
        raise EngineError(f"{what}: port {port} out of range")
    return HostPort(host, port)


def parse_trunk(uri: str | None, key: str = "engine.sip.trunk") -> HostPort:
    """`sip:host[:port][;params]` (a bare `host[:port]` is accepted too). What the embedded engine
    cannot carry is refused here, at start-up, naming `key`: `sips:` and `;transport=tcp|tls`
    (it sends UDP only) and IPv6 (it listens on IPv4)."""
    text = (uri or LAB_TRUNK).strip()
    if text.lower().startswith("sips:"):
        raise EngineError(f"{key}: sips (TLS) is not supported by the embedded engine")
    if text.lower().startswith("sip:"):
        text = text[4:]
    params = [p.partition("=") for p in text.split("?", 1)[0].split(";")[1:]]
    transport = next((v.lower() for k, _, v in params if k.lower() == "transport"), "udp")
    if transport != "udp":
        raise EngineError(f"{key}: transport {transport} is not supported by the embedded engine (UDP only)")
    text = text.split(";", 1)[0].split("?", 1)[0]
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    found = parse_hostport(text, 5060, key)
    if ":" in found.host:
        raise EngineError(f"{key}: IPv6 ({found.host}) is not supported by the embedded engine (IPv4 only)")
    return found


def trunk_next_hop(trunk: HostPort) -> NextHop:
    """Every number goes to the trunk; the number becomes the Request-URI user."""
    return lambda _number: (trunk.host, trunk.port)


_USER_SAFE = re.compile(r"[^0-9A-Za-z+*#._~!-]")


def from_identity(caller_id: str) -> tuple[str, str]:
    """(From user, display name) for a caller ID. Caller IDs are normally E.164 numbers; anything
    else is made safe here, because sippy writes both parts into the From header unescaped."""
    user = _USER_SAFE.sub("", caller_id) or "anonymous"
    display = caller_id.replace('"', "").replace("\\", "").strip() or user
    return user, display
