"""The request builder, starting with the two examples of the Acrobits web callback page."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webcallback.client import (
    AccountError,
    ClientError,
    Options,
    TemplateError,
    build_request,
    normalize_number,
    parse_account,
)
from webcallback.client.account import account_from_mapping
from webcallback.client.template import PASSWORD_MASK

DATA = Path(__file__).parent / "data"
# Verbatim from the Acrobits web callback page's examples.
SEED_GET_ACCOUNT = (DATA / "seed_get_account.xml").read_text()
SEED_GET_REQUEST_LINE = (DATA / "seed_get_request_line.txt").read_text().strip()
SEED_POST_ACCOUNT = (DATA / "seed_post_account.xml").read_text()
SEED_JSON_BODY = (DATA / "seed_post_body.json").read_bytes()


def test_seed_get_example_field_for_field() -> None:
    request = build_request(parse_account(SEED_GET_ACCOUNT), normalize_number("12345"))
    assert request.method == "GET"
    assert request.wire() == (
        f"{SEED_GET_REQUEST_LINE}\r\n"
        "Host: example.com\r\n"
        "Connection: close\r\n"
        "Cache-Control: max-age=0\r\n"
        "User-Agent: CloudSoftphone/1.5.6\r\n"
        "\r\n"
    )
    assert request.body == b"" and request.digest_auth is None and request.timeout == 30.0
    assert request.notes == ()


def test_seed_post_json_example_field_for_field() -> None:
    request = build_request(parse_account(SEED_POST_ACCOUNT), normalize_number("+1 (555) 123-1234"))
    # The page shows "Content-Length: 183", which does not match its own body (copied from the
    # response, it seems); we send the real length.
    assert request.wire() == (
        "POST /webcallback/ HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "Connection: close\r\n"
        "Cache-Control: max-age=0\r\n"
        f"Content-Length: {len(SEED_JSON_BODY)}\r\n"
        "Content-Type: application/json\r\n"
        "User-Agent: CloudSoftphone/1.5.6\r\n"
        "\r\n" + SEED_JSON_BODY.decode()
    )
    assert request.body == SEED_JSON_BODY


def test_seed_post_over_http_masks_the_password() -> None:
    account = parse_account(SEED_POST_ACCOUNT.replace("https://", "http://"))
    request = build_request(account, "+15551231234")
    assert b'"password" : "' + PASSWORD_MASK.encode() + b'"' in request.body
    assert b"secretW0rd" not in request.body
    assert any("https" in note for note in request.notes)


@pytest.mark.parametrize(
    ("nodes", "method", "has_body"),
    [
        ({}, "GET", False),
        ({"wcb_postData": "a=1"}, "POST", True),
        ({"wcb_postData": "a=1", "wcb_method": "get"}, "GET", False),  # GET ignores PostData
        ({"wcb_method": "PUT", "wcb_postData": "a=1"}, "PUT", True),
        ({"wcb_method": "DELETE"}, "DELETE", True),
        ({"wcb_method": "HEAD"}, "HEAD", False),
    ],
)
def test_method_rules(nodes: dict[str, str], method: str, has_body: bool) -> None:
    request = build_request(account_from_mapping({"wcb_url": "https://h/x", **nodes}), "1")
    assert request.method == method
    header_names = [name for name, _ in request.headers]
    assert ("Content-Type" in header_names) == has_body
    assert request.body == (b"a=1" if has_body and nodes.get("wcb_postData") else b"")


def test_default_content_type_and_form_escaping() -> None:
    request = build_request(
        account_from_mapping(
            {"wcb_url": "https://h/x", "wcb_postData": "to=%targetNumber%&n=%account[n]%", "n": "a b&c"}
        ),
        "+15551231234",
    )
    assert dict(request.headers)["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body == b"to=%2B15551231234&n=a%20b%26c"


def test_raw_substitution_mimics_naive_templates() -> None:
    nodes = {"wcb_url": "https://h/x", "wcb_postData": "to=%targetNumber%&n=%account[n]%", "n": "a&c"}
    request = build_request(account_from_mapping(nodes), "+1555", Options(raw_substitution=True))
    assert request.body == b"to=+1555&n=a&c"


def test_xml_body_is_xml_escaped() -> None:
    nodes = {
        "wcb_url": "https://h/x",
        "wcb_postData": "<r><u>%account[username]%</u><to>%targetNumber%</to></r>",
        "wcb_contentType": "application/xml",
        "username": "a<b&c",
    }
    assert build_request(account_from_mapping(nodes), "1").body == b"<r><u>a&lt;b&amp;c</u><to>1</to></r>"


def test_one_nonce_per_request_everywhere() -> None:
    nodes = {
        "wcb_url": "http://h/x?nonce=%nonce%",
        "wcb_postData": "nonce=%nonce%&hash=%sha1(%nonce%%account[password]%)%",
        "wcb_customHeaders": "X-Nonce: %nonce%",
        "password": "pw",
    }
    first = build_request(account_from_mapping(nodes), "1")
    nonce = dict(first.headers)["X-Nonce"]
    assert len(nonce) >= 16
    assert first.url.endswith(f"nonce={nonce}")
    assert first.body.startswith(f"nonce={nonce}&hash=".encode())
    second = build_request(account_from_mapping(nodes), "1")
    assert dict(second.headers)["X-Nonce"] != nonce  # fresh per request
    assert build_request(account_from_mapping(nodes), "1", Options(nonce="fixed")).url.endswith("nonce=fixed")


def test_custom_headers_digest_timeout_and_user_agent() -> None:
    nodes = {
        "wcb_url": "https://h/x",
        "wcb_customHeaders": "X-Api-Key: k-%account[username]%\n\nUser-Agent: Custom/1\r\nX-Empty:",
        "wcb_authUsername": "john",
        "wcb_authPassword": "pw",
        "wcb_timeout": "7.5",
        "username": "u",
    }
    request = build_request(account_from_mapping(nodes), "1", Options(user_agent="Groundwire/24.0"))
    headers = dict(request.headers)
    assert headers["X-Api-Key"] == "k-u"
    assert headers["User-Agent"] == "Custom/1"  # a custom header replaces our default
    assert headers["X-Empty"] == ""
    assert request.digest_auth == ("john", "pw")
    assert request.timeout == 7.5


def test_global_parameters() -> None:
    nodes = {"wcb_url": "https://h/x?i=%installid%&a=%appid%&p=%platform%"}
    options = Options(parameters={"installid": "I1", "appid": "com.acme.app", "platform": "ios"})
    assert (
        build_request(account_from_mapping(nodes), "1", options).url
        == "https://h/x?i=I1&a=com.acme.app&p=ios"
    )


@pytest.mark.parametrize(
    ("nodes", "error"),
    [
        ({"wcb_url": ""}, AccountError),
        ({"wcb_url": "ftp://h/x"}, AccountError),
        ({"wcb_url": "https://h/x", "wcb_method": "PATCH"}, AccountError),
        ({"wcb_url": "https://h/x", "wcb_customHeaders": "no colon here"}, AccountError),
        (
            {"wcb_url": "https://h/x", "wcb_customHeaders": "X: %account[v]%", "v": "a\nEvil: 1"},
            TemplateError,
        ),
        ({"wcb_url": "https:///x"}, TemplateError),
    ],
)
def test_invalid_accounts(nodes: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        build_request(account_from_mapping(nodes), "1")


# ---- property: any account gives a request or a ClientError, never anything else ----------------

node_values = st.text(max_size=40)
urls = st.sampled_from(["https://h/x?a=%account[v]%", "http://h:8080/%targetNumber%", "https://h/"])
urls |= st.text(max_size=40).map(lambda t: "https://h/" + t)


@settings(max_examples=200)
@given(
    urls,
    st.fixed_dictionaries(
        {},
        optional={
            "v": node_values,
            "password": node_values,
            "wcb_postData": node_values,
            "wcb_contentType": st.sampled_from(["application/json", "application/xml", "text/plain", ""]),
            "wcb_method": st.sampled_from(["", "get", "POST", "PUT", "HEAD", "DELETE", "PATCH"]),
            "wcb_customHeaders": node_values,
            "wcb_timeout": st.sampled_from(["", "1", "x", "-1"]),
        },
    ),
    st.text(max_size=20),
)
def test_any_account_builds_or_raises_client_error(url: str, nodes: dict[str, str], target: str) -> None:
    try:
        request = build_request(account_from_mapping({"wcb_url": url, **nodes}), target)
    except ClientError:
        return
    request.to_httpx()
    request.wire()
