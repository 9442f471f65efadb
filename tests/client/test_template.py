from __future__ import annotations

import base64
import hashlib
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webcallback.client.account import account_from_mapping
from webcallback.client.template import (
    PASSWORD_MASK,
    AccountNode,
    Call,
    Context,
    Text,
    Variable,
    body_escape,
    expand,
    parse_template,
)

ACCOUNT = account_from_mapping(
    {"username": "john doe", "password": "p&ss\"w'd<", "callbackNumber": "+15559879876"}
)


def ctx(reveal: bool = True, **parameters: str) -> Context:
    return Context(ACCOUNT, {"targetNumber": "+15551231234", "nonce": "abc123", **parameters}, reveal)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_parse_shapes() -> None:
    assert parse_template("a%x%b%account[user]%%sha1(%nonce%%account[password]%)%") == (
        Text("a"),
        Variable("x", "%x%"),
        Text("b"),
        AccountNode("user", "%account[user]%"),
        Call(
            "sha1",
            (Variable("nonce", "%nonce%"), AccountNode("password", "%account[password]%")),
            "%sha1(%nonce%%account[password]%)%",
        ),
    )


@pytest.mark.parametrize("text", ["100%", "a%20b%2Fc", "%", "%%", "50% off", "%account[]%", "%sha1(unclosed"])
def test_stray_percent_signs_are_literal(text: str) -> None:
    assert expand(text, ctx(), "raw").text == text


def test_variables_and_account_nodes() -> None:
    result = expand("%account[username]%:%targetNumber%:%installid%", ctx(installid="I-1"), "raw")
    assert result.text == "john doe:+15551231234:I-1"
    assert result.unknown == () and result.missing_nodes == ()


def test_unknown_left_verbatim_and_missing_node_empty() -> None:
    result = expand("a=%nosuch%&b=%account[nosuch]%&c=%md5(x)%", ctx(), "url")
    assert result.text == "a=%nosuch%&b=&c=%md5(x)%"
    assert result.unknown == ("%nosuch%", "%md5(x)%")
    assert result.missing_nodes == ("nosuch",)


def test_nested_sha1_uses_plain_values_and_one_nonce() -> None:
    result = expand("n=%nonce%&h=%sha1(%nonce%%account[password]%)%&again=%nonce%", ctx(reveal=False), "url")
    assert result.text == f"n=abc123&h={sha1('abc123' + ACCOUNT.get('password'))}&again=abc123"
    assert not result.password_masked  # inside sha1 the real password is hashed, nothing is sent


def test_sha1_nested_twice_and_base64() -> None:
    inner = sha1("x")
    assert expand("%sha1(%sha1(x)%)%", ctx(), "raw").text == sha1(inner)
    b64 = Context(ACCOUNT, {}, True, sha1_format="base64")
    assert expand("%sha1(x)%", b64, "raw").text == base64.b64encode(hashlib.sha1(b"x").digest()).decode()


def test_password_guard() -> None:
    assert expand("%account[password]%", ctx(reveal=True), "raw").text == "p&ss\"w'd<"
    masked = expand("%account[password]%", ctx(reveal=False), "raw")
    assert masked.text == PASSWORD_MASK and masked.password_masked


@pytest.mark.parametrize(
    ("escape", "expected"),
    [
        ("url", "u=john%20doe&p=p%26ss%22w%27d%3C&to=%2B15551231234"),
        ("json", "u=john doe&p=p&ss\\\"w'd<&to=+15551231234"),
        ("xml", "u=john doe&p=p&amp;ss&quot;w&apos;d&lt;&to=+15551231234"),
        ("raw", "u=john doe&p=p&ss\"w'd<&to=+15551231234"),
    ],
)
def test_escaping(escape: str, expected: str) -> None:
    template = "u=%account[username]%&p=%account[password]%&to=%targetNumber%"
    assert expand(template, ctx(), escape).text == expected  # type: ignore[arg-type]  # escape: a Literal, from parametrize


@pytest.mark.parametrize(
    ("content_type", "escape"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/vnd.x+json", "json"),
        ("application/xml", "xml"),
        ("text/xml", "xml"),
        ("application/x-www-form-urlencoded", "url"),
        ("text/plain", "raw"),
    ],
)
def test_body_escape(content_type: str, escape: str) -> None:
    assert body_escape(content_type) == escape


# ---- properties ------------------------------------------------------------------------------

template_text = (
    st.text(alphabet=st.sampled_from(list("%()[]ab_1 account sha1 nonce")), max_size=80) | st.text()
)
values = st.text(max_size=30)


@given(template_text, values)
def test_expand_never_raises(template: str, value: str) -> None:
    context = Context(
        account_from_mapping({"a": value, "password": value}), {"nonce": value, "b": value}, False
    )
    for escape in ("url", "json", "xml", "raw"):
        expand(template, context, escape)


@given(st.text().filter(lambda t: "%" not in t))
def test_text_without_percent_is_unchanged(text: str) -> None:
    assert expand(text, ctx(), "url").text == text


@given(values)
def test_url_escaping_round_trips(value: str) -> None:
    context = Context(account_from_mapping({"v": value}), {}, True)
    assert unquote(expand("%account[v]%", context, "url").text) == value


@given(st.integers(min_value=1, max_value=400))
def test_deeply_nested_unclosed_calls_stay_literal(depth: int) -> None:
    text = "%sha1(" * depth
    assert expand(text, ctx(), "raw").text == text
