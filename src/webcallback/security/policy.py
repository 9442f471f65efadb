"""The toll-fraud number policy, sans-IO: given a normalised E.164 number and the rules for its
leg, say whether it may be called and why not. Deny beats allow; a non-empty allow list admits
only what it lists; refused libphonenumber types apply to both legs."""

from __future__ import annotations

from dataclasses import dataclass

from phonenumbers import PhoneNumberType

from webcallback.config import NumberRules
from webcallback.numbers import number_info

TYPE_NAMES: dict[int, str] = {
    getattr(PhoneNumberType, name): name
    for name in (
        "FIXED_LINE",
        "MOBILE",
        "FIXED_LINE_OR_MOBILE",
        "TOLL_FREE",
        "PREMIUM_RATE",
        "SHARED_COST",
        "VOIP",
        "PERSONAL_NUMBER",
        "PAGER",
        "UAN",
        "VOICEMAIL",
        "UNKNOWN",
    )
}

# What the app shows (under 100 characters) for a refused type.
_TYPE_WORDS = {
    "PREMIUM_RATE": "premium-rate numbers",
    "SHARED_COST": "shared-cost numbers",
    "UAN": "universal access numbers",
    "PERSONAL_NUMBER": "personal numbers",
    "UNKNOWN": "unrecognised numbers",
    "TOLL_FREE": "toll-free numbers",
    "VOIP": "VoIP numbers",
    "PAGER": "pagers",
    "VOICEMAIL": "voicemail numbers",
    "MOBILE": "mobile numbers",
    "FIXED_LINE": "landlines",
    "FIXED_LINE_OR_MOBILE": "these numbers",
}


@dataclass(frozen=True)
class Refusal:
    reason: str  # machine-readable: `type:PREMIUM_RATE`, `prefix:+1900`, `country:CU`, `allow-list`
    message: str  # for the app


def number_type(e164: str) -> str:
    """The type's name; UNKNOWN also for a number libphonenumber does not consider valid."""
    return TYPE_NAMES.get(number_info(e164)[0], "UNKNOWN")


def check_number(e164: str, rules: NumberRules, refused_types: tuple[str, ...], what: str) -> Refusal | None:
    """None if `e164` (the `what`: "destination number" / "callback number") may be called."""
    code, country = number_info(e164)
    kind = TYPE_NAMES.get(code, "UNKNOWN")
    if kind in refused_types:
        return Refusal(f"type:{kind}", f"Calls to {_TYPE_WORDS.get(kind, 'these numbers')} are not allowed.")
    denied = next((p for p in rules.deny_prefixes if e164.startswith(p)), None)
    if denied is not None:
        return Refusal(f"prefix:{denied}", f"This {what} is not allowed.")
    if country is not None and country in {c.upper() for c in rules.deny_countries}:
        return Refusal(f"country:{country}", f"Calls to this country are not allowed ({what}).")
    if rules.allow_prefixes and not any(e164.startswith(p) for p in rules.allow_prefixes):
        return Refusal("allow-list:prefix", f"This {what} is not allowed.")
    if rules.allow_countries and (
        country is None or country not in {c.upper() for c in rules.allow_countries}
    ):
        return Refusal("allow-list:country", f"Calls to this country are not allowed ({what}).")
    return None
