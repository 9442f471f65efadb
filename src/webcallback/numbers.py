"""Phone numbers to E.164 with libphonenumber.

`is_possible_number` decides acceptance, not `is_valid_number`: the seed's own example
+1 (555) 123-1234 is possible but not valid (555 is no assigned area code), and a provider's trunk,
not us, knows best what it can route. Fraud policy (number types) is a separate, later check.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache

import phonenumbers

from webcallback.errors import BadRequest

MAX_INPUT = 64
INFO_CACHE = 4096
# Characters people and apps put in numbers: digits, +, spaces, dots, dashes, parentheses, slashes.
_ALLOWED = re.compile(r"^[0-9+ .\-()/\t]*$")


class InvalidNumber(BadRequest):
    error_id = "invalid-number"


def to_e164(raw: str, region: str | None, *, what: str = "number") -> str:
    """Normalise `raw` (E.164, international, or national in `region`) or raise InvalidNumber."""
    return _to_e164(raw, region, what)


# A pure function of its arguments, and the callback number repeats on every request of an account:
# parsing costs ~20-30 µs, a cache hit well under 1 µs. Errors are not cached (lru_cache never stores
# an exception), so a refused number is re-checked, and answered the same, every time.
@lru_cache(maxsize=4096)
def _to_e164(raw: str, region: str | None, what: str) -> str:
    text = raw.strip()
    if raw.startswith(" ") and text[:1].isdigit():
        # An app that does not URL-encode its template sends "+1555..." and form decoding turns
        # the "+" into a space: a leading space before digits is taken back as the "+".
        text = "+" + text
    if not text:
        raise InvalidNumber(f"The {what} is empty.")
    if len(text) > MAX_INPUT or not _ALLOWED.match(text):
        raise InvalidNumber(f"The {what} is not a phone number.")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region if region else None)
    except phonenumbers.NumberParseException:
        raise InvalidNumber(f"The {what} is not a valid phone number.") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(f"The {what} is not a valid phone number.")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    _just_parsed[e164] = parsed
    if len(_just_parsed) > _JUST_PARSED_MAX:
        _just_parsed.popitem(last=False)
    return e164


# The fraud policy classifies the number `to_e164` has just normalised; parsing costs ~18 µs, so the
# parsed object is kept for that next step (a handful is enough: it is used within the request).
_JUST_PARSED_MAX = 64
_just_parsed: OrderedDict[str, phonenumbers.PhoneNumber] = OrderedDict()


@lru_cache(maxsize=INFO_CACHE)
def number_info(e164: str) -> tuple[int, str | None]:
    """libphonenumber's type (a `PhoneNumberType` value) and ISO country of an E.164 number; the
    country is None for non-geographic numbers (+800...). One parse for both; cached, since the
    callback number repeats on every request of an account.

    `number_type` returns UNKNOWN exactly when `is_valid_number` is false for a number whose region
    comes from its own country code (both run the same pattern match), so an invalid number is
    UNKNOWN here without a second match (tests compare with `is_valid_number` on random numbers)."""
    parsed = _just_parsed.pop(e164, None)
    if parsed is None:
        try:
            parsed = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return phonenumbers.PhoneNumberType.UNKNOWN, None
    code = phonenumbers.region_code_for_number(parsed)
    region = None if code in (None, "ZZ", "001") else code
    return phonenumbers.number_type(parsed), region


def region_of(e164: str) -> str | None:
    """ISO country of an E.164 number, or None (e.g. non-geographic +800)."""
    return number_info(e164)[1]
