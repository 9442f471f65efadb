"""HTTP Digest authentication (RFC 7616), sans-IO: parsing the `Authorization` header, building
the `WWW-Authenticate` challenges, minting and checking server nonces, computing responses.

Server nonces are `base64url(issued-at ‖ random ‖ HMAC(key, issued-at ‖ random))`: any node that
holds the same secret key can check one without a shared table, and an expired one is answered
with `stale=true`. What must be shared is which nonce-counts were already used; that is the
store's `digest_nonces` table (see `DigestNonces`). Only `qop=auth` is offered: without `nc`
there is no replay protection. Note that `qop=auth` protects the password and the request line
(method and URI, including the query string), not a POST body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_HEADER = 4096
MAX_PARAMS = 24
NONCE_RANDOM = 12
NONCE_MAC = 16

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NC = re.compile(r"^[0-9a-fA-F]{8}$")


class DigestHeaderError(ValueError):
    """The Authorization header is not a well-formed Digest response."""


@dataclass(frozen=True)
class DigestResponse:
    """The client's answer to a challenge, as sent."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str | None
    nc: str | None
    cnonce: str | None
    opaque: str | None
    userhash: bool

    @property
    def nonce_count(self) -> int:
        if self.nc is None or not _NC.match(self.nc):
            raise DigestHeaderError("nc must be 8 hex digits")
        return int(self.nc, 16)


def parse_authorization(header: str) -> DigestResponse | None:
    """A Digest `Authorization` header → DigestResponse; None if it uses another scheme.
    Raises DigestHeaderError if it is Digest but malformed."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    if len(header) > MAX_HEADER:
        raise DigestHeaderError("header too long")
    params = _parse_params(rest)
    username = params.get("username")
    if username is None and "username*" in params:
        username = _ext_value(params["username*"])
    required = ("realm", "nonce", "uri", "response")
    if username is None or any(name not in params for name in required):
        raise DigestHeaderError("username, realm, nonce, uri and response are required")
    return DigestResponse(
        username=username,
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=params.get("algorithm", "MD5"),
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
        opaque=params.get("opaque"),
        userhash=params.get("userhash", "false").lower() == "true",
    )


def _parse_params(text: str) -> dict[str, str]:
    """`name=token` / `name="quoted \\"string\\""` pairs separated by commas (RFC 7235 auth-param)."""
    out: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos] in " \t,":
            pos += 1
        if pos >= end:
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise DigestHeaderError("parameter name expected")
        name, pos = match.group().lower(), match.end()
        while pos < end and text[pos] in " \t":
            pos += 1
        if pos >= end or text[pos] != "=":
            raise DigestHeaderError(f"'=' expected after {name[:20]}")
        pos += 1
        while pos < end and text[pos] in " \t":
            pos += 1
        value, pos = _value(text, pos)
        if name in out:
            raise DigestHeaderError(f"{name[:20]} given twice")
        out[name] = value
        if len(out) > MAX_PARAMS:
            raise DigestHeaderError("too many parameters")
        while pos < end and text[pos] in " \t":
            pos += 1
        if pos < end and text[pos] != ",":
            raise DigestHeaderError("',' expected between parameters")
    return out


def _value(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text):
                chars.append(text[pos + 1])
                pos += 2
            elif ch == '"':
                return "".join(chars), pos + 1
            else:
                chars.append(ch)
                pos += 1
        raise DigestHeaderError("unterminated quoted string")
    match = _TOKEN.match(text, pos)
    if not match:
        raise DigestHeaderError("value expected")
    return match.group(), match.end()


def _ext_value(value: str) -> str:
    """RFC 8187 `UTF-8''percent-encoded` (for `username*`)."""
    charset, _, rest = value.partition("'")
    _lang, _, encoded = rest.partition("'")
    if charset.lower() != "utf-8":
        raise DigestHeaderError("username* must be UTF-8")
    try:
        value = unquote(encoded, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise DigestHeaderError("username* is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise DigestHeaderError("username* holds control characters")
    return value


# ---- computing -------------------------------------------------------------------------------


def _base_algorithm(algorithm: str) -> str:
    return algorithm.upper().removesuffix("-SESS")


def supported(algorithm: str) -> bool:
    return _base_algorithm(algorithm) in _HASHES


def expected_response(resp: DigestResponse, method: str, password: str) -> str:
    """The `response` value a client knowing `password` would send (qop=auth)."""
    h = _HASHES[_base_algorithm(resp.algorithm)]
    ha1 = h(f"{resp.username}:{resp.realm}:{password}".encode())
    if resp.algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{resp.nonce}:{resp.cnonce or ''}".encode())
    ha2 = h(f"{method}:{resp.uri}".encode())
    return h(f"{ha1}:{resp.nonce}:{resp.nc or ''}:{resp.cnonce or ''}:{resp.qop or ''}:{ha2}".encode())


def uri_matches(uri: str, path: str, query: str) -> bool:
    """The `uri` parameter names this request: the request-target (origin or absolute form)."""
    target = path + ("?" + query if query else "")
    if uri == target:
        return True
    parts = urlsplit(uri)
    return bool(parts.scheme) and parts.path + ("?" + parts.query if parts.query else "") == target


# ---- server nonces ---------------------------------------------------------------------------


class NonceMint:
    """Issues and checks server nonces. `keys[0]` signs; every key verifies (key rotation)."""

    def __init__(self, keys: Sequence[bytes], lifetime: float) -> None:
        if not keys:
            raise ValueError("a nonce key is needed")
        self._keys = list(keys)
        self.lifetime = lifetime

    def issue(self, now: float) -> str:
        body = struct.pack(">d", now) + os.urandom(NONCE_RANDOM)
        return base64.urlsafe_b64encode(body + self._mac(self._keys[0], body)).decode().rstrip("=")

    def issued_at(self, nonce: str) -> float | None:
        """When a genuine nonce was issued; None if this service did not issue it."""
        if len(nonce) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 8 + NONCE_RANDOM + NONCE_MAC:
            return None
        body, mac = raw[:-NONCE_MAC], raw[-NONCE_MAC:]
        if not any(hmac.compare_digest(mac, self._mac(k, body)) for k in self._keys):
            return None
        issued: float = struct.unpack(">d", body[:8])[0]
        return issued

    @staticmethod
    def _mac(key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()[:NONCE_MAC]


def challenges(realm: str, algorithms: Sequence[str], nonce: str, opaque: str, *, stale: bool) -> list[str]:
    """One `WWW-Authenticate` value per algorithm, most preferred first (RFC 7616 §3.7)."""
    return [
        f'Digest realm="{_quote(realm)}", qop="auth", algorithm={algorithm}, nonce="{nonce}", '
        f'opaque="{opaque}", charset=UTF-8{", stale=true" if stale else ""}'
        for algorithm in algorithms
    ]


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def client_authorization(
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    challenge: dict[str, str],
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """What a client answers to a challenge (for tests, the fuzzer and the CLI)."""
    resp = DigestResponse(
        username=username,
        realm=challenge["realm"],
        nonce=challenge["nonce"],
        uri=uri,
        response="",
        algorithm=challenge.get("algorithm", "MD5"),
        qop="auth",
        nc=f"{nc:08x}",
        cnonce=cnonce or os.urandom(8).hex(),
        opaque=challenge.get("opaque"),
        userhash=False,
    )
    value = expected_response(resp, method, password)
    opaque = f', opaque="{resp.opaque}"' if resp.opaque is not None else ""
    return (
        f'Digest username="{_quote(username)}", realm="{_quote(resp.realm)}", nonce="{resp.nonce}", '
        f'uri="{_quote(uri)}", algorithm={resp.algorithm}, qop=auth, nc={resp.nc}, '
        f'cnonce="{resp.cnonce}", response="{value}"{opaque}'
    )


def parse_challenge(header: str) -> dict[str, str]:
    """A `WWW-Authenticate: Digest ...` value → its parameters (client side)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestHeaderError("not a Digest challenge")
    return _parse_params(rest)
