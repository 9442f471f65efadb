"""A large, deterministic rate deck for the 100,000-prefix test and `bench/rates.py`."""

from __future__ import annotations

import random

HEADER = "prefix,price_per_minute,connection_fee,first_increment,next_increment,description\n"


def make_prefixes(count: int, seed: int = 4) -> list[str]:
    """`count` distinct prefixes of 2 to 9 digits, nested like real decks (country, then ranges)."""
    rng = random.Random(seed)
    found: set[str] = set()
    while len(found) < count:
        length = rng.choice((2, 3, 4, 5, 6, 6, 7, 7, 8, 9))
        found.add(str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(length - 1)))
    return sorted(found)


def make_deck_csv(count: int, seed: int = 4) -> str:
    rng = random.Random(seed + 1)
    lines = [HEADER]
    for prefix in make_prefixes(count, seed):
        price = rng.randint(1, 50000) / 100000
        inc = rng.choice(("60,60", "30,6", "1,1"))
        lines.append(f"{prefix},{price:.5f},0,{inc},Range {prefix}\n")
    return "".join(lines)


def numbers_for(prefixes: list[str], count: int, seed: int = 9) -> list[str]:
    """E.164 numbers, each starting with one of `prefixes`, padded to 12 digits."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        p = rng.choice(prefixes)
        out.append("+" + p + "".join(rng.choice("0123456789") for _ in range(max(0, 12 - len(p)))))
    return out
