"""What the app makes of the web callback response. Pure: status, headers and body in; never raises.

Rules (web callback page): a 2xx is success and the app shows "waiting for call". Anything else is
an error whose text is the `message` field of the body, read according to the response's
Content-Type (`application/json`, `application/xml`, `application/x-www-form-urlencoded`); if that
field is empty or absent, the app shows the first 100 characters of the body.

Choices where Acrobits is silent: JSON must be an object (a scalar `message` is shown as text); XML
may have any root and the first `message` element anywhere is used; `+json`/`text/xml` variants
count as their family; other types (text/plain, HTML) fall back to the body excerpt; the body is
decoded with the Content-Type charset, else UTF-8, undecodable bytes replaced. A 3xx is not
followed by default (see docs/client.md), so it is an error like any other non-2xx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from webcallback.client._xml import XmlRefused, parse_xml

WAITING_FOR_CALL = "waiting for call"
EXCERPT_LENGTH = 100

MessageSource = Literal["success", "message", "body", "empty"]
BodyFormat = Literal["json", "xml", "form", "other"]

_ID_FIELDS = ("id", "callbackId", "callback_id")


@dataclass(frozen=True)
class CallbackResult:
    ok: bool
    status: int
    message: str
    """What the app shows: "waiting for call", the `message` field, or the body excerpt."""
    source: MessageSource
    """Where `message` came from; `empty` means a failure with an empty body."""
    content_type: str = ""
    body: bytes = b""
    callback_id: str | None = None
    """The id our own server returns on success, if the body carries one (`id`)."""
    location: str | None = None
    """The Location of a 3xx, to help the provider fix `wcb_url`."""


def body_format(content_type: str) -> BodyFormat:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or media == "text/json":
        return "json"
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return "xml"
    if media == "application/x-www-form-urlencoded":
        return "form"
    return "other"


def decode_body(body: bytes, content_type: str) -> str:
    """The body as text: the declared charset if Python knows it, else UTF-8; never raises."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            try:
                return body.decode(value.strip().strip('"'), errors="replace")
            except LookupError:
                break
    return body.decode("utf-8", errors="replace")


def parse_fields(body: bytes, content_type: str) -> Mapping[str, str]:
    """Top-level fields of a JSON object, XML document (first element of each name) or form body;
    {} when the body cannot be read in its declared format."""
    kind = body_format(content_type)
    text = decode_body(body, content_type)
    if kind == "json":
        return _json_fields(text)
    if kind == "xml":
        return _xml_fields(body)
    if kind == "form":
        return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}
    return {}


def _json_fields(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    fields = {}
    for name, value in data.items():
        if isinstance(value, str):
            fields[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fields[name] = str(value)
    return fields


def _xml_fields(body: bytes) -> dict[str, str]:
    try:
        root = parse_xml(body)
    except (XmlRefused, RecursionError):
        return {}
    fields: dict[str, str] = {}
    for element in root.iter():
        if element.tag not in fields:  # the first element of each name wins
            fields[element.tag] = element.all_text().strip()
    return fields


def interpret(status: int, headers: Mapping[str, str], body: bytes) -> CallbackResult:
    """Apply the app's rules to one response. `headers` lookups must be case-insensitive
    (an `httpx.Headers` is)."""
    content_type = headers.get("content-type", "")
    fields = parse_fields(body, content_type)
    if 200 <= status < 300:
        callback_id = next((fields[name] for name in _ID_FIELDS if fields.get(name)), None)
        return CallbackResult(True, status, WAITING_FOR_CALL, "success", content_type, body, callback_id)
    location = headers.get("location") if 300 <= status < 400 else None
    message = fields.get("message", "")
    if message.strip():
        return CallbackResult(False, status, message, "message", content_type, body, None, location)
    excerpt = decode_body(body, content_type)[:EXCERPT_LENGTH]
    source: MessageSource = "body" if excerpt else "empty"
    return CallbackResult(False, status, excerpt, source, content_type, body, None, location)
