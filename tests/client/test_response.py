"""The app's response rules, as a pure function (the same rules over real HTTP: test_send.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webcallback.client import WAITING_FOR_CALL, interpret
from webcallback.client.response import body_format, decode_body

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success_whatever_the_body(status: int) -> None:
    result = interpret(status, JSON, b'{"message": "ignored"}')
    assert result.ok and result.message == WAITING_FOR_CALL and result.source == "success"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{ "message" : "Not enough credit for this call." }'),
        ("application/json; charset=utf-8", b'{"error": 1, "message": "Not enough credit for this call."}'),
        ("application/problem+json", b'{"message": "Not enough credit for this call."}'),
        ("application/xml", b"<error><message>Not enough credit for this call.</message></error>"),
        (
            "text/xml",
            b"<?xml version='1.0'?><response><a><message> Not enough credit for this call.\n"
            b"</message></a></response>",
        ),
        ("application/x-www-form-urlencoded", b"error=1&message=Not+enough+credit+for+this+call."),
        ("application/x-www-form-urlencoded", b"message=Not%20enough%20credit%20for%20this%20call."),
    ],
)
def test_message_field(content_type: str, body: bytes) -> None:
    result = interpret(403, {"content-type": content_type}, body)
    assert not result.ok
    assert (result.message, result.source) == ("Not enough credit for this call.", "message")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"message": ""}'),
        ("application/json", b'{"message": null, "detail": "x"}'),
        ("application/json", b'["message"]'),
        ("application/json", b"not json at all"),
        ("application/xml", b"<error><message>   </message></error>"),
        ("application/xml", b"<broken"),
        ("application/x-www-form-urlencoded", b"error=1"),
        ("text/plain", b"message=plain text is not parsed"),
        ("text/html", b"<html><body><p>message</p></body></html>"),
        ("", b'{"message": "no content type, no parsing"}'),
    ],
)
def test_missing_message_shows_body_start(content_type: str, body: bytes) -> None:
    result = interpret(500, {"content-type": content_type}, body)
    assert (result.message, result.source) == (body.decode()[:100], "body")


def test_excerpt_is_100_characters_not_bytes() -> None:
    body = ("é" * 150).encode()
    result = interpret(500, {}, body)
    assert result.message == "é" * 100


def test_non_utf8_body() -> None:
    latin1 = "Crédit épuisé".encode("latin-1")
    assert (
        interpret(402, {"content-type": "text/plain; charset=ISO-8859-1"}, latin1).message == "Crédit épuisé"
    )
    assert interpret(402, {"content-type": "text/plain"}, latin1).message == "Cr\ufffddit \ufffdpuis\ufffd"
    assert interpret(402, {"content-type": "text/plain; charset=nonsense"}, b"\xff").message == "\ufffd"
    utf16 = '{"message": "Kein Guthaben"}'.encode("utf-16")
    assert (
        interpret(402, {"content-type": "application/json; charset=utf-16"}, utf16).message == "Kein Guthaben"
    )


def test_empty_body() -> None:
    result = interpret(503, JSON, b"")
    assert (result.ok, result.message, result.source) == (False, "", "empty")


def test_3xx_is_an_error_with_its_location() -> None:
    result = interpret(302, {"location": "https://new.example.com/wcb"}, b"")
    assert not result.ok and result.location == "https://new.example.com/wcb"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"id": "cb-42"}'),
        ("application/xml", b"<response><id>cb-42</id></response>"),
        ("application/x-www-form-urlencoded", b"id=cb-42"),
        ("application/json", b'{"callbackId": "cb-42"}'),
    ],
)
def test_success_callback_id(content_type: str, body: bytes) -> None:
    assert interpret(202, {"content-type": content_type}, body).callback_id == "cb-42"


def test_body_format() -> None:
    assert [
        body_format(t)
        for t in ("APPLICATION/JSON", "text/xml; charset=x", "application/x-www-form-urlencoded")
    ] == [
        "json",
        "xml",
        "form",
    ]
    assert decode_body(b"abc", "text/plain; charset=rot13") == "abc"  # not a text codec: UTF-8


content_types = st.sampled_from(
    ["application/json", "application/xml", "application/x-www-form-urlencoded", "text/plain", ""]
) | st.text(max_size=40)


@given(st.integers(min_value=100, max_value=599), content_types, st.binary(max_size=300))
def test_interpret_never_raises(status: int, content_type: str, body: bytes) -> None:
    result = interpret(status, {"content-type": content_type}, body)
    assert result.ok == (200 <= status < 300)
    assert len(result.message) <= 100 or result.source == "message"


@given(
    st.sampled_from(["application/json", "application/xml", "application/x-www-form-urlencoded"]),
    st.text(max_size=60),
)
def test_structured_bodies_with_arbitrary_text(content_type: str, text: str) -> None:
    for body in (text, f'{{"message": {text!r}}}', f"<r><message>{text}</message></r>", f"message={text}"):
        interpret(400, {"content-type": content_type}, body.encode("utf-8", "surrogatepass"))


def test_nested_xml() -> None:
    body = b"<a>" * 60 + b"<message>deep</message>" + b"</a>" * 60
    assert interpret(400, {"content-type": "application/xml"}, body).message == "deep"


def test_hostile_nesting_is_cheap_and_falls_back_to_the_body() -> None:
    body = b"".join(b"<a%d>" % i for i in range(50_000)) + b"<message>deep</message>"
    result = interpret(400, {"content-type": "application/xml"}, body)
    assert (result.source, result.message) == ("body", body[:100].decode())
