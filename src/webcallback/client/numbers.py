"""Normalise a number as typed on the keypad, the way the app fills `%targetNumber%`.

Documented example: "+1 (555) 123-1234" becomes "+15551231234". The rule we apply: keep a leading
`+`, keep digits and the dial characters `*` and `#`, drop everything else (spaces, brackets,
dashes, dots, slashes). National and short numbers stay as typed: the app does not add a country
code (the old helpdesk text says the number is passed "as it is dialed").
"""

from __future__ import annotations

from webcallback.client.errors import ClientError

_KEEP = frozenset("0123456789*#")


class NumberError(ClientError, ValueError):
    """The typed text contains no digits."""


def normalize_number(typed: str) -> str:
    """'+1 (555) 123-1234' -> '+15551231234'. Raises NumberError if nothing dialable remains."""
    text = typed.strip()
    plus = "+" if text.startswith("+") else ""
    digits = "".join(ch for ch in text if ch in _KEEP)
    if not any(ch.isdigit() for ch in digits):
        raise NumberError(f"no digits in {typed!r}")
    return plus + digits
