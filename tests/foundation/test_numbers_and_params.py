from __future__ import annotations

import pytest

from webcallback.errors import ApiError
from webcallback.numbers import InvalidNumber, region_of, to_e164
from webcallback.web.client_info import TrustedProxies
from webcallback.web.params import parse_params, pick


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+1 (555) 123-1234", None, "+15551231234"),
        ("+15551231234", "GB", "+15551231234"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("0044 20 7946 0018", "US", "+442079460018"),
        ("030 901820", "DE", "+4930901820"),
    ],
)
def test_to_e164(raw: str, region: str | None, e164: str) -> None:
    assert to_e164(raw, region) == e164


@pytest.mark.parametrize("raw", ["", "12", "abc", "+1 555 <script>", "9" * 80, "+0 123"])
def test_invalid_numbers(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        to_e164(raw, "US")


def test_region_of() -> None:
    assert region_of("+442079460018") == "GB"
    assert region_of("+80012345678") is None


def test_query_and_body_merge_body_wins() -> None:
    p = parse_params(b"to=1&u=alice", b'{"to": "2"}', "application/json")
    assert p.values == {"to": "2", "u": "alice"} and p.body_format == "json"


def test_json_numbers_become_strings() -> None:
    assert parse_params(b"", b'{"to": 15551231234}', "application/json").values["to"] == "15551231234"


def test_plus_in_an_unencoded_query_survives_as_space_then_number() -> None:
    # An app that does not URL-encode sends "+1555..." which form decoding turns into " 1555...".
    p = parse_params(b"to=+15551231234", b"", None)
    assert p.values["to"] == " 15551231234"
    assert to_e164(p.values["to"], "GB") == "+15551231234"


def test_pick_aliases() -> None:
    assert pick({"to": "+1", "targetNumber": "+1"}, ("targetNumber", "to"), "x") == "+1"
    assert pick({"to": " "}, ("to",), "x") is None
    with pytest.raises(ApiError):
        pick({"to": "+1", "targetNumber": "+2"}, ("targetNumber", "to"), "x")


def test_trusted_proxies() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    info = proxies.resolve("10.1.2.3", "http", "198.51.100.7, 10.9.9.9", "https")
    assert (info.address, info.https) == ("198.51.100.7", True)
    assert proxies.resolve("192.0.2.1", "http", "198.51.100.7", "https").address == "192.0.2.1"
    assert TrustedProxies([]).resolve("10.1.2.3", "https", "1.2.3.4", "http").https is True
