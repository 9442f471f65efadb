"""Property-based tests over every parser that sees attacker-controlled input: request parameters
(query, form, JSON, XML), Content-Type, phone numbers, the Digest header, client-info resolution,
server nonces, the number policy. The property: a value or one of our own ApiErrors (4xx), never
any other exception."""

from __future__ import annotations

import contextlib
import json
import os
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from webcallback.config import NumberRules, mask_url_password
from webcallback.errors import ApiError
from webcallback.numbers import region_of, to_e164
from webcallback.security import digest
from webcallback.security.digest import DigestHeaderError, NonceMint
from webcallback.security.policy import check_number
from webcallback.web.client_info import TrustedProxies
from webcallback.web.params import body_format_of, parse_params, pick
from webcallback.web.responses import choose_format

N = int(os.environ.get("WEBCALLBACK_FUZZ_PARSER_EXAMPLES", "500"))
fuzz = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/xml",
            "text/xml; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin-1",
            "multipart/form-data; boundary=x",
            "",
            ";;;",
        ]
    ),
    st.text(max_size=80),
)
NAMES = st.sampled_from(["to", "targetNumber", "callback", "username", "password", "nonce", "hash", "x"])
VALUES = st.one_of(st.text(max_size=40), st.from_regex(r"\+?[0-9 ()\-.]{0,20}", fullmatch=True))


def _client_error(exc: ApiError) -> None:
    assert 400 <= exc.status_code < 500, exc
    assert exc.message


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    pairs = draw(st.lists(st.tuples(NAMES, VALUES), max_size=6))
    kind = draw(st.sampled_from(["form", "json", "xml", "raw"]))
    if kind == "form":
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    if kind == "json":
        values = {
            k: draw(st.one_of(st.just(v), st.integers(), st.floats(), st.none(), st.booleans()))
            for k, v in pairs
        }
        return json.dumps(values).encode(), "application/json"
    if kind == "xml":
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in pairs)
        return f"<request>{inner}</request>".encode(), "application/xml"
    return draw(st.binary(max_size=300)), draw(CONTENT_TYPES)


@fuzz
@given(query=st.binary(max_size=200), body=bodies())
@example(query=b"to=1&to=2", body=(b"", None))
@example(query=b"%ff%fe", body=(b"", None))
@example(query=b"", body=(b'{"to": ' + b"9" * 5000 + b"}", "application/json"))
@example(query=b"", body=(b"[" * 5000 + b"]" * 5000, "application/json"))
@example(
    query=b"", body=(b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r><to>&e;</to></r>', "text/xml")
)
@example(query=b"", body=(b"<r>" + b"<a>" * 3000 + b"</a>" * 3000 + b"</r>", "application/xml"))
@example(query=b"", body=(b"\xff\xfe<r/>", "application/xml"))
def test_parse_params(query: bytes, body: tuple[bytes, str | None]) -> None:
    raw, content_type = body
    try:
        params = parse_params(query, raw, content_type)
    except ApiError as exc:
        _client_error(exc)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.values.items())
    assert all(len(v) <= 1024 for v in params.values.values())


@fuzz
@given(st.text(max_size=200))
def test_body_format_of(content_type: str) -> None:
    try:
        fmt, charset = body_format_of(content_type)
    except ApiError as exc:
        _client_error(exc)
        return
    assert fmt in (None, "form", "json", "xml") and charset


@fuzz
@given(st.dictionaries(NAMES, VALUES, max_size=8), st.lists(NAMES, min_size=1, max_size=3))
def test_pick(values: dict[str, str], names: list[str]) -> None:
    try:
        picked = pick(values, tuple(names), "thing")
    except ApiError as exc:
        _client_error(exc)
        return
    assert picked is None or picked in {v.strip() for v in values.values()}


REGIONS = st.one_of(st.none(), st.sampled_from(["US", "GB", "DE", "CZ", "IN", "ZZ", "XX", "", "001"]))


@fuzz
@given(
    st.one_of(
        st.text(max_size=80),
        st.from_regex(r"(\+|00)?[0-9 ()\-./]{0,40}", fullmatch=True),
        st.integers(min_value=0).map(lambda n: "+" + str(n)),
    ),
    REGIONS,
)
@example("+" + "9" * 63, None)
@example("00", "US")
@example("+1 (555) 123-1234", None)
def test_to_e164_and_policy(raw: str, region: str | None) -> None:
    try:
        e164 = to_e164(raw, region)
    except ApiError as exc:
        _client_error(exc)
        return
    assert e164.startswith("+") and e164[1:].isdigit()
    region_of(e164)
    rules = NumberRules(deny_prefixes=("+1900",), allow_countries=("US", "GB"))
    refusal = check_number(e164, rules, ("PREMIUM_RATE", "UNKNOWN"), "destination number")
    assert refusal is None or len(refusal.message) < 100


HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF)


@fuzz
@given(
    st.one_of(
        st.text(HEADER_CHARS, max_size=300),
        st.text(HEADER_CHARS, max_size=300).map(lambda t: "Digest " + t),
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce", "username*", "x"]
                ),
                st.text(HEADER_CHARS, max_size=20),
                st.booleans(),
            ),
            max_size=10,
        ).map(lambda ps: "Digest " + ", ".join(f'{k}="{v}"' if q else f"{k}={v}" for k, v, q in ps)),
    )
)
@example("Digest " + "a=b," * 10000)
@example('Digest username*=UTF-8\'\'%ff%fe, realm="r", nonce="n", uri="/", response="x"')
@example('Digest username="a\\')
def test_parse_authorization(header: str) -> None:
    try:
        parsed = digest.parse_authorization(header)
    except DigestHeaderError:
        return
    if parsed is not None:
        with contextlib.suppress(DigestHeaderError):
            assert parsed.nonce_count >= 0


@fuzz
@given(
    username=st.text(HEADER_CHARS.filter(lambda c: c not in '"\\'), min_size=1, max_size=30),
    password=st.text(max_size=30),
    uri=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60),
    nc=st.integers(min_value=1, max_value=2**32 - 1),
    algorithm=st.sampled_from(["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"]),
)
def test_digest_round_trip(username: str, password: str, uri: str, nc: int, algorithm: str) -> None:
    mint = NonceMint([b"k" * 32], 300)
    challenge = {"realm": "webcallback", "nonce": mint.issue(1000.0), "algorithm": algorithm, "opaque": "o"}
    header = digest.client_authorization(
        username=username, password=password, method="POST", uri=uri, challenge=challenge, nc=nc
    )
    parsed = digest.parse_authorization(header)
    assert parsed is not None
    assert (parsed.username, parsed.uri, parsed.nonce_count) == (username, uri, nc)
    assert digest.expected_response(parsed, "POST", password) == parsed.response
    assert digest.expected_response(parsed, "POST", password + "x") != parsed.response
    assert mint.issued_at(parsed.nonce) == 1000.0


@fuzz
@given(st.text(max_size=100))
def test_foreign_nonces_are_not_ours(nonce: str) -> None:
    assert NonceMint([b"k" * 32], 300).issued_at(nonce) is None


ADDRESSES = st.one_of(
    st.ip_addresses().map(str),
    st.text(max_size=40),
    st.sampled_from(["127.0.0.1", "10.0.0.1", "::1", "[2001:db8::1]:443", "203.0.113.5:1234", "unknown"]),
)


@fuzz
@given(
    peer=ADDRESSES,
    scheme=st.sampled_from(["http", "https", ""]),
    forwarded_for=st.one_of(st.none(), st.lists(ADDRESSES, max_size=5).map(", ".join), st.text(max_size=100)),
    forwarded_proto=st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["https", "http, https"])),
)
def test_client_info_resolution(
    peer: str, scheme: str, forwarded_for: str | None, forwarded_proto: str | None
) -> None:
    proxies = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8", "::1"])
    info = proxies.resolve(peer, scheme, forwarded_for, forwarded_proto)
    assert isinstance(info.https, bool)
    if not proxies.trusts(peer):
        assert info.address == peer and info.https == (scheme == "https")
    else:
        assert len(info.address) <= 64  # what the proxies add is a parsed address, or the proxy itself


@fuzz
@given(
    st.text(max_size=100),
    st.one_of(st.none(), st.sampled_from(["json", "xml", "form"])),
    st.text("abcXYZ019-_.~!$&'()*+,;=%", min_size=1, max_size=40),
)
def test_response_format_and_masking(accept: str, body_format: str | None, password: str) -> None:
    assert choose_format("auto", body_format, accept) in ("json", "xml", "form")
    masked = mask_url_password(f"postgresql://user:{password}@db.example/cb")
    assert masked == "postgresql://user:**********@db.example/cb"
