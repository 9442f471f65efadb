"""Build the exact HTTP request the app sends for one web callback. Pure: no I/O.

Rules (Acrobits generic web-service scheme, intro page):
- method: `wcb_method` if set; else GET when `wcb_postData` is empty, else POST. GET sends no body.
- Content-Type: `wcb_contentType`, default `application/x-www-form-urlencoded`; sent with a body.
- `wcb_customHeaders`: one `Name: Value` per line, templates expanded; they replace our defaults.
- HTTP Digest with `wcb_authUsername`/`wcb_authPassword` when the username is set.
- timeout: `wcb_timeout` seconds, default 30.
The default headers and their order copy the request shown in the web callback page's example.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from webcallback.client.account import METHODS, Account
from webcallback.client.errors import AccountError, TemplateError
from webcallback.client.template import Context, Escape, Expansion, Sha1Format, body_escape, expand

USER_AGENT = "CloudSoftphone/1.5.6"
"""The User-Agent in the Acrobits example request."""

DEFAULT_CONTENT_TYPE = "application/x-www-form-urlencoded"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name (RFC 9110 token)."""
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""Characters no header value may carry (tab is allowed)."""


def new_nonce() -> str:
    """A fresh nonce: 32 hex digits. The app's real format is not documented."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Options:
    """How to emulate the app, beyond what the Account XML says."""

    parameters: Mapping[str, str] = field(default_factory=dict)
    """Global parameters (`installid`, `appid`, ...), by name."""
    raw_substitution: bool = False
    """Substitute values unescaped, like a naive template engine."""
    user_agent: str = USER_AGENT
    sha1_format: Sha1Format = "hex"
    nonce: str | None = None
    """Fix the nonce (tests, reproducing a capture); default: a fresh one per request."""


@dataclass(frozen=True)
class CallbackRequest:
    """One fully expanded request, ready to send or to print."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    timeout: float
    digest_auth: tuple[str, str] | None = None
    notes: tuple[str, ...] = ()
    """Warnings found while expanding: unknown placeholders, absent nodes, a masked password."""

    def to_httpx(self) -> httpx.Request:
        """The httpx request; send it with `client.send` so no client defaults are added."""
        # Values go out as UTF-8 (httpx would refuse non-ASCII str values); names are tokens.
        headers = [(name.encode("ascii"), value.encode("utf-8")) for name, value in self.headers]
        return httpx.Request(self.method, self.url, headers=headers, content=self.body)

    def wire(self) -> str:
        """The request as it goes on the wire (HTTP/1.1), body decoded as UTF-8 for display."""
        target = self.to_httpx().url.raw_path.decode("ascii")
        lines = [f"{self.method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in self.headers)]
        return "\r\n".join(lines) + "\r\n\r\n" + self.body.decode("utf-8", errors="replace")


def choose_method(account: Account) -> str:
    method = account.wcb_method.strip().upper()
    if not method:
        return "POST" if account.wcb_post_data else "GET"
    if method not in METHODS:
        raise AccountError(f"wcb_method must be one of {', '.join(METHODS)} (got {account.wcb_method!r})")
    return method


def build_request(account: Account, target_number: str, options: Options | None = None) -> CallbackRequest:
    """Expand the account's `wcb_*` templates for a call to `target_number` (already normalised)."""
    options = options or Options()
    url_template = account.wcb_url
    scheme = urlsplit(url_template).scheme.lower()
    if scheme not in ("http", "https"):
        raise AccountError(f"wcb_url must start with http:// or https:// (got {url_template!r})")
    # One nonce per request, shared by every occurrence (the salted-hash recipe depends on it).
    parameters = {**options.parameters, "targetNumber": target_number, "nonce": options.nonce or new_nonce()}
    context = Context(account, parameters, reveal_password=scheme == "https", sha1_format=options.sha1_format)
    method = choose_method(account)
    content_type = account.wcb_content_type or DEFAULT_CONTENT_TYPE
    expansions: list[Expansion] = []

    def fill(template: str, escape: Escape) -> str:
        expansion = expand(template, context, "raw" if options.raw_substitution else escape)
        expansions.append(expansion)
        return expansion.text

    url = fill(url_template, "url")
    has_body = method not in ("GET", "HEAD")
    body = fill(account.wcb_post_data, body_escape(content_type)).encode("utf-8") if has_body else b""
    defaults = _default_headers(url, body, content_type if has_body else None, options.user_agent)
    custom = [(name, fill(value, "raw")) for name, value in _custom_header_lines(account.wcb_custom_headers)]
    headers = _merge_headers(defaults, _checked_headers(custom))
    auth = (account.wcb_auth_username, account.wcb_auth_password) if account.wcb_auth_username else None
    return CallbackRequest(method, url, headers, body, account.timeout(), auth, _notes(expansions))


def _default_headers(url: str, body: bytes, content_type: str | None, agent: str) -> list[tuple[str, str]]:
    try:
        host = httpx.URL(url).netloc.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise TemplateError(f"the expanded wcb_url is not a valid URL: {exc}") from None
    if not host:
        raise TemplateError(f"the expanded wcb_url has no host: {url!r}")
    headers = [("Host", host), ("Connection", "close"), ("Cache-Control", "max-age=0")]
    if content_type is not None:
        headers += [("Content-Length", str(len(body))), ("Content-Type", content_type)]
    headers.append(("User-Agent", agent))
    return headers


def _custom_header_lines(template: str) -> list[tuple[str, str]]:
    """Split `wcb_customHeaders` into (name, value template) before expansion, so that a
    substituted value can never start a header of its own."""
    headers = []
    for line in template.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name.strip()):
            raise AccountError(f"wcb_customHeaders: not a 'Name: Value' line: {line!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def _checked_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    for name, value in headers:
        if _CONTROL.search(value):
            raise TemplateError(f"wcb_customHeaders: the value of {name} expands to a control character")
    return headers


Headers = tuple[tuple[str, str], ...]


def _merge_headers(defaults: list[tuple[str, str]], custom: list[tuple[str, str]]) -> Headers:
    """Custom headers replace defaults of the same name (case-insensitive), else are appended."""
    overridden = {name.lower() for name, _ in custom}
    return tuple([(k, v) for k, v in defaults if k.lower() not in overridden] + custom)


def _notes(expansions: list[Expansion]) -> tuple[str, ...]:
    notes: list[str] = []
    for expansion in expansions:
        notes += [f"unknown placeholder left as is: {source}" for source in expansion.unknown]
        notes += [f"account node <{name}> is absent; expanded to ''" for name in expansion.missing_nodes]
        if expansion.password_masked:
            notes.append("%account[password]% sent as asterisks: the app sends passwords only to https URLs")
    return tuple(dict.fromkeys(notes))
