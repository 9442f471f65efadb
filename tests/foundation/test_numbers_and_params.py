from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webcallback.errors import ApiError
from webcallback.numbers import InvalidNumber, number_info, region_of, to_e164
from webcallback.security.policy import TYPE_NAMES, number_type
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


def _type_as_before(e164: str) -> str:
    """The policy's classification as it was written first: is_valid_number, then number_type."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "UNKNOWN"
    if not phonenumbers.is_valid_number(parsed):
        return "UNKNOWN"
    return TYPE_NAMES.get(phonenumbers.number_type(parsed), "UNKNOWN")


_COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(_COUNTRY_CODES), st.text("0123456789", min_size=2, max_size=13))
def test_one_parse_classifies_as_is_valid_then_number_type(code: int, national: str) -> None:
    e164 = f"+{code}{national}"
    assert number_type(e164) == _type_as_before(e164)


@pytest.mark.parametrize("region", ["US", "GB", "DE", "FR", "IT", "ES", "AU", "JP", "BR", "IN", "CH", "AT"])
def test_one_parse_classifies_example_numbers_of_every_type(region: str) -> None:
    for kind in TYPE_NAMES:
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert number_type(e164) == _type_as_before(e164), (region, TYPE_NAMES[kind])


def test_normalising_keeps_the_parse_for_the_classification() -> None:
    number_info.cache_clear()
    e164 = to_e164("+44 20 7946 0999", None)
    assert number_info(e164) == (phonenumbers.PhoneNumberType.FIXED_LINE, "GB")
    assert number_type("+19005550100") == "PREMIUM_RATE"


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
