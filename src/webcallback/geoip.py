"""Country of a client address, from the database bundled in the `iptocc` package (RIR data; no
download at run time). Private, loopback and unknown addresses have no country."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)
def country_of(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if not ip.is_global:
        return None
    from iptocc import country_code  # imported lazily: its table costs memory only when used

    try:
        code = country_code(str(ip))
    except Exception:  # the package raises its own errors for unallocated space
        return None
    return code if isinstance(code, str) and len(code) == 2 else None
