"""The service's OpenAPI 3.0 description, served at `GET /openapi.json` and used by the fuzz
tests (schemathesis). Parameter names and the endpoint path follow the settings.

Other parts of the service describe their endpoints by calling `register_path` at import time
(e.g. `/balance`, `/rate`, `/api/v1/callbacks/{id}`); their items are merged in as given.
"""

from __future__ import annotations

from typing import Any

from webcallback import __version__
from webcallback.config import Settings

_EXTRA_PATHS: dict[str, dict[str, Any]] = {}

MEDIA_TYPES = ("application/json", "application/xml", "application/x-www-form-urlencoded")


def register_path(path: str, item: dict[str, Any]) -> None:
    """Add (or extend) a path item in the document, e.g. `register_path("/balance", {"get": ...})`."""
    _EXTRA_PATHS.setdefault(path, {}).update(item)


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    xml = {**schema, "xml": {"name": "response"}}
    return {m: {"schema": xml if m == "application/xml" else schema} for m in MEDIA_TYPES}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": _content({"$ref": "#/components/schemas/Error"}),
    }
    if headers:
        out["headers"] = headers
    return out


_READY = (
    "Ready for callbacks: the database answers and takes writes, no write failed in the last 10 s, "
    "the telephony engine runs."
)


def _health(operation: str, summary: str, unavailable: str | None) -> dict[str, Any]:
    status = {"type": "string", "enum": ["ok"]}
    responses: dict[str, Any] = {
        "200": {
            "description": "OK.",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"status": status}, "required": ["status"]}
                }
            },
        }
    }
    if unavailable is not None:
        problems = {"type": "array", "items": {"type": "string"}}
        body = {"status": {"type": "string"}, "problems": problems, "message": {"type": "string"}}
        responses["503"] = {
            "description": unavailable,
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": body, "required": ["status", "problems"]}
                }
            },
        }
    return {"summary": summary, "operationId": operation, "responses": responses}


def _request_schema(settings: Settings) -> dict[str, Any]:
    names = settings.api.params
    props: dict[str, Any] = {}
    for group, example in (
        (names.target, "+15551231234"),
        (names.callback, "+15559879876"),
        (names.user, "johndow"),
        (names.password, "secretW0rd"),
        (names.nonce, None),
        (names.hash, None),
    ):
        for name in group:
            props[name] = {"type": "string", **({"example": example} if example and name == group[0] else {})}
    return {"type": "object", "properties": props, "additionalProperties": {"type": "string"}}


def _callback_operation(settings: Settings, method: str) -> dict[str, Any]:
    schema = _request_schema(settings)
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in schema["properties"]
    ]
    op: dict[str, Any] = {
        "summary": "Request a web callback (the Acrobits app's `wcb_url`).",
        "description": "Credentials by password (HTTPS only), nonce + salted SHA-1 hash, or HTTP Digest "
        "(RFC 7616: a request without credentials gets 401 with `WWW-Authenticate: Digest` challenges). "
        "Errors carry `message`, which the app shows.",
        "operationId": f"webcallback_{method}",
        "parameters": [
            *query,
            {"name": "Authorization", "in": "header", "required": False, "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {
                "description": "Accepted (or a duplicate of a recent callback): its id.",
                "content": _content({"$ref": "#/components/schemas/Accepted"}),
            },
            "400": _error("Malformed request: missing or invalid parameter, duplicate parameter, bad body."),
            "401": _error(
                "Not authenticated; carries Digest challenges.",
                {"WWW-Authenticate": {"schema": {"type": "string"}}},
            ),
            "403": _error("Refused: password over HTTP, no credit, disabled account, number policy."),
            "413": _error("Body too large."),
            "415": _error("Unsupported Content-Type or charset."),
            "429": _error(
                "Locked out or over a limit.",
                {"Retry-After": {"schema": {"type": "integer"}, "required": True}},
            ),
            "503": _error("Temporarily unavailable."),
        },
    }
    if method == "post":
        op["requestBody"] = {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "application/json": {"schema": schema},
                "application/xml": {"schema": {**schema, "xml": {"name": "request"}}},
            },
        }
    return op


def openapi_document(settings: Settings) -> dict[str, Any]:
    path = "/" + settings.api.path.strip("/")
    paths: dict[str, Any] = {
        path: {"get": _callback_operation(settings, "get"), "post": _callback_operation(settings, "post")},
        "/livez": {"get": _health("livez", "The process serves HTTP (restart it when this fails).", None)},
        "/readyz": {"get": _health("readyz", _READY, "Not ready: the database or the engine is out.")},
        "/healthz": {"get": _health("healthz", "The same as /readyz (its earlier name).", "Not ready.")},
    }
    for extra, item in _EXTRA_PATHS.items():
        paths.setdefault(extra, {}).update(item)
    return {
        "openapi": "3.0.3",
        "info": {"title": "webcallback", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Accepted": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "state": {"type": "string"}},
                    "required": ["id"],
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string", "maxLength": 100},
                        "error": {"type": "string"},
                    },
                    "required": ["message", "error"],
                },
            }
        },
    }
