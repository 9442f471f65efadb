"""Money and rates as the app shows them on the keypad: "$12.34", "€0.015/min", "12.34 CZK"."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from webcallback.billing.rating import Rate

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$"}


def format_money(amount: Decimal, currency: str, *, min_places: int = 2, max_places: int = 2) -> str:
    """`amount` with at least `min_places` and at most `max_places` decimals, trailing zeros beyond
    `min_places` trimmed; a known currency gets its symbol in front, others their code behind."""
    text = _decimals(amount, min_places, max_places)
    symbol = SYMBOLS.get(currency.upper())
    if symbol is None:
        return f"{text} {currency.upper()}"
    return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"


def _decimals(amount: Decimal, min_places: int, max_places: int) -> str:
    rounded = amount.quantize(Decimal(1).scaleb(-max_places), rounding=ROUND_HALF_UP)
    text = f"{rounded:.{max_places}f}"
    if max_places > min_places:
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0").ljust(min_places, "0")
        text = f"{whole}.{frac}" if frac else whole
    return text


def format_price(amount: Decimal, currency: str) -> str:
    """A per-minute price: cents, and fractions of a cent when the deck has them ("$0.0125")."""
    return format_money(amount, currency, min_places=2, max_places=4)


def format_rate(per_minute: Decimal, connection_fee: Decimal, currency: str) -> str:
    """ "$0.02/min", or "$0.02/min + $0.10" when answering costs a connection fee."""
    text = f"{format_price(per_minute, currency)}/min"
    if connection_fee > 0:
        text += f" + {format_price(connection_fee, currency)}"
    return text


def combined_rate_string(rates: list[Rate], currency: str) -> str:
    """What a minute of a callback costs the user: all its legs' prices added."""
    per_minute = sum((r.price_per_minute for r in rates), Decimal(0))
    fees = sum((r.connection_fee for r in rates), Decimal(0))
    return format_rate(per_minute, fees, currency)


def balance_string(balance: Decimal, reserved: Decimal, currency: str) -> str:
    """ "$12.34", or "$12.34 ($1.50 reserved)" while callbacks hold credit."""
    text = format_money(balance, currency)
    if reserved > 0:
        text += f" ({format_money(reserved, currency)} reserved)"
    return text
