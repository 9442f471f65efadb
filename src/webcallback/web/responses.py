"""Response bodies in the three formats the app parses (JSON, XML, form), chosen by config or, with
`auto`, by the request body's format, else the Accept header, else JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from starlette.responses import Response

from webcallback.web.params import FORM, JSON, XML

CONTENT_TYPES = {
    JSON: "application/json; charset=utf-8",
    XML: "application/xml; charset=utf-8",
    FORM: "application/x-www-form-urlencoded; charset=utf-8",
}


def choose_format(configured: str, body_format: str | None, accept: str | None) -> str:
    if configured != "auto":
        return configured
    if body_format:
        return body_format
    accept = (accept or "").lower()
    if "json" in accept:
        return JSON
    if "xml" in accept:
        return XML
    if "x-www-form-urlencoded" in accept:
        return FORM
    return JSON


def render(fmt: str, fields: Mapping[str, str | int | float]) -> bytes:
    if fmt == XML:
        inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<response>{inner}</response>'.encode()
    if fmt == FORM:
        return urlencode({k: str(v) for k, v in fields.items()}).encode()
    return json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")).encode()


def respond(
    fmt: str, status: int, fields: Mapping[str, str | int | float], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(render(fmt, fields), status_code=status, media_type=CONTENT_TYPES[fmt], headers=headers)


def respond_empty(status: int = 200) -> Response:
    return Response(b"", status_code=status)
