"""Bad input gets a clear 4xx with a message: never a 500, never a traceback. One test per kind."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest

from tests.api.conftest import PASSWORD, fresh_nonce, salted
from tests.httpserver import RunningServer
from webcallback.service.container import Services


def post(server: RunningServer, body: bytes | str, content_type: str | None) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.post(f"{server.url}/webcallback", content=body, headers=headers)


CASES = [
    ("malformed JSON", b'{"u": "alice", ', "application/json", 400, "The body is not valid JSON."),
    ("JSON array", b'["alice"]', "application/json", 400, "The JSON body must be an object."),
    (
        "nested JSON",
        b'{"u": {"x": 1}}',
        "application/json",
        400,
        "Parameter 'u' must be a string or a number.",
    ),
    (
        "duplicate JSON key",
        b'{"u": "a", "u": "b"}',
        "application/json",
        400,
        "Parameter 'u' is given twice in the body.",
    ),
    ("malformed XML", b"<r><u>alice</r>", "application/xml", 400, None),
    ("XML entity", b'<!DOCTYPE r [<!ENTITY x "y">]><r><u>&x;</u></r>', "application/xml", 400, None),
    (
        "XML external entity",
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><u>&x;</u></r>',
        "text/xml",
        400,
        None,
    ),
    ("nested XML", b"<r><u><v>1</v></u></r>", "application/xml", 400, "Element 'u' must hold text only."),
    ("invalid UTF-8 JSON", b'{"u": "\xff\xfe"}', "application/json", 400, "The body is not valid UTF-8."),
    (
        "invalid UTF-8 form",
        b"u=\xff",
        "application/x-www-form-urlencoded",
        400,
        "The body is not valid UTF-8.",
    ),
    (
        "unknown content type",
        b"u=alice",
        "text/csv",
        415,
        "Unsupported Content-Type 'text/csv': use form, JSON or XML.",
    ),
    ("non-UTF-8 charset", b"u=alice", "application/x-www-form-urlencoded; charset=latin-1", 415, None),
    ("duplicate form parameter", b"u=a&u=b", "application/x-www-form-urlencoded", 400, None),
    (
        "empty destination",
        b"u=alice&to=",
        "application/x-www-form-urlencoded",
        400,
        "The destination number is missing.",
    ),
    (
        "empty username",
        b"u=&p=secret&to=%2B15551231234",
        "application/x-www-form-urlencoded",
        400,
        "The username is missing.",
    ),
    (  # no credentials at all: the HTTP Digest challenge (tests/security)
        "no credentials",
        b"u=&to=%2B15551231234",
        "application/x-www-form-urlencoded",
        401,
        "Log in to request a callback.",
    ),
    ("aliases that disagree", b"to=%2B15551231234&targetNumber=%2B15550000000", None, 400, None),
]


@pytest.mark.parametrize(
    ("name", "body", "content_type", "status", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_body(
    server: RunningServer, name: str, body: bytes, content_type: str | None, status: int, message: str | None
) -> None:
    response = post(server, body, content_type)
    assert response.status_code == status, response.text
    data = response.json() if "json" in response.headers["content-type"] else None
    text = data["message"] if data else response.text
    assert text and "Traceback" not in response.text
    if message and data:
        assert data["message"] == message


def test_duplicate_query_parameter(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/webcallback?u=alice&u=bob&to=%2B15551231234")
    assert response.status_code == 400
    assert response.json()["error"] == "duplicate-parameter"


def test_invalid_utf8_in_query_string(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/webcallback?u=%ff&to=1")
    assert response.status_code == 400
    assert response.json()["message"] == "The query string is not valid UTF-8."


def test_body_over_the_limit_is_413(server: RunningServer) -> None:
    response = post(server, b"u=" + b"a" * 17000, "application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert parse_qs(response.text)["message"] == ["The request body is larger than 16384 bytes."]


def test_chunked_body_over_the_limit_is_413(server: RunningServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"a" * 1000

    response = httpx.post(
        f"{server.url}/webcallback",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_other_methods_get_a_message(server: RunningServer) -> None:
    response = httpx.put(f"{server.url}/webcallback", content=b"")
    assert response.status_code == 405
    assert response.json()["message"] == "Method Not Allowed"


def test_server_errors_are_logged_with_a_request_id_and_no_password(
    server: RunningServer,
    services: Services,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services.callbacks, "create", broken)
    monkeypatch.setattr(services.callback_service, "_callbacks", services.callbacks)
    nonce = fresh_nonce()
    with caplog.at_level(logging.ERROR, logger="webcallback"):
        response = httpx.get(
            f"{server.url}/webcallback",
            params={"u": "alice", "nonce": nonce, "hash": salted(nonce), "to": "+15551231234", "p": ""},
        )
    assert response.status_code == 500
    message = response.json()["message"]
    assert message.startswith("Internal error (request ")
    assert "disk on fire" not in response.text and "Traceback" not in response.text
    request_id = message.removeprefix("Internal error (request ").rstrip(").")
    assert any(request_id in r.getMessage() for r in caplog.records)
    assert PASSWORD not in caplog.text


def test_letters_as_a_number(server: RunningServer) -> None:
    nonce = fresh_nonce()
    params = {"u": "alice", "nonce": nonce, "hash": salted(nonce), "to": "call-me"}
    response = httpx.get(f"{server.url}/webcallback", params=params)
    assert response.status_code == 400
    assert response.json()["message"] == "The destination number is not a phone number."
