"""Reading a rate deck from CSV, pure (no store): every row checked, errors carry line numbers.

The header names the columns, in any order:

    prefix,price_per_minute,connection_fee,first_increment,next_increment,description
    44,0.0200,0,60,60,United Kingdom
    4477,0.0900,0.05,30,6,United Kingdom mobile

`prefix` and `price_per_minute` are required; `connection_fee` defaults to 0, the increments to 60
and 60, `description` to empty. A prefix is the start of the E.164 number, digits only (a leading
'+' is dropped). Blank lines are skipped. Unknown columns, a repeated prefix or a bad value make the
whole file fail: a deck is imported completely or not at all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from webcallback.billing.rating import Rate, money

COLUMNS = ("prefix", "price_per_minute", "connection_fee", "first_increment", "next_increment", "description")
REQUIRED = ("prefix", "price_per_minute")
MAX_PREFIX = 15  # E.164 numbers have at most 15 digits


class DeckError(ValueError):
    """A deck file is malformed; `line` is 1-based (the header is line 1)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def parse_deck(lines: Iterable[str]) -> list[Rate]:
    """All rates of the file, or DeckError at the first bad line."""
    rates: list[Rate] = []
    seen: dict[str, int] = {}
    reader = csv.reader(lines)
    header = _header(reader)
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        rate = _rate(dict(zip(header, (c.strip() for c in row), strict=False)), row, header, line)
        if rate.prefix in seen:
            raise DeckError(line, f"prefix {rate.prefix} already given on line {seen[rate.prefix]}")
        seen[rate.prefix] = line
        rates.append(rate)
    return rates


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        header = [h.strip().lower().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise DeckError(1, "the file is empty; the first line must be the header") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise DeckError(1, f"unknown column {unknown[0]!r}; columns are {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DeckError(1, f"the header lacks the column {missing[0]!r}")
    if len(set(header)) != len(header):
        raise DeckError(1, "a column is named twice")
    return header


def _rate(cells: dict[str, str], row: list[str], header: list[str], line: int) -> Rate:
    if len(row) > len(header):
        raise DeckError(line, f"{len(row)} fields, but the header has {len(header)}")
    prefix = cells.get("prefix", "").removeprefix("+")
    if not prefix.isdigit() or not prefix.isascii() or len(prefix) > MAX_PREFIX:
        raise DeckError(line, f"prefix {cells.get('prefix', '')!r} must be 1 to {MAX_PREFIX} digits")
    try:
        return Rate(
            prefix=prefix,
            price_per_minute=_amount(cells.get("price_per_minute", ""), "price_per_minute", line),
            connection_fee=_amount(cells.get("connection_fee") or "0", "connection_fee", line),
            first_increment=_seconds(cells.get("first_increment") or "60", "first_increment", line),
            next_increment=_seconds(cells.get("next_increment") or "60", "next_increment", line),
            description=cells.get("description", ""),
        )
    except ValueError as exc:
        if isinstance(exc, DeckError):
            raise
        raise DeckError(line, str(exc)) from None


def _amount(text: str, column: str, line: int) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DeckError(line, f"{column} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise DeckError(line, f"{column} {text!r} must be a number, zero or more")
    if money(value) != value:
        raise DeckError(line, f"{column} {text!r} has more than 6 decimals")
    return value


def _seconds(text: str, column: str, line: int) -> int:
    if not text.isdigit():
        raise DeckError(line, f"{column} {text!r} must be a whole number of seconds")
    return int(text)
