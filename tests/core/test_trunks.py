"""Trunk selection, number format, pacing and the failover rule: pure, no sockets."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from webcallback.config import TrunkSettings
from webcallback.core.trunks import Trunk, TrunkSet, fails_over, format_number
from webcallback.domain import EndedBy


def make(name: str, **kw: object) -> Trunk:
    return Trunk(name=name, host="192.0.2.1", port=5060, settings=TrunkSettings(uri=f"sip:{name}", **kw))  # type: ignore[arg-type]


def test_lowest_priority_first_then_weighted() -> None:
    trunks = TrunkSet(
        [make("b", priority=20), make("a1", priority=10, weight=3), make("a2", priority=10, weight=1)]
    )
    rng = random.Random(7)
    firsts = Counter(trunks.candidates("+1555", rng)[0].name for _ in range(4000))
    assert set(firsts) == {"a1", "a2"}
    assert 2.6 < firsts["a1"] / firsts["a2"] < 3.4  # weight 3 : 1
    assert all(trunks.candidates("+1555", rng)[-1].name == "b" for _ in range(50))


def test_down_full_and_other_prefixes_are_skipped() -> None:
    down, full, uk, us = make("down"), make("full", max_channels=1), make("uk", prefixes=("+44",)), make("us")
    down.up = False
    full.seize()
    trunks = TrunkSet([down, full, uk, us])
    assert [t.name for t in trunks.candidates("+15551230001", random.Random(1))] == ["us"]
    assert {t.name for t in trunks.candidates("+442071230001", random.Random(1))} == {"uk", "us"}
    full.release()
    assert "full" in [t.name for t in trunks.candidates("+1555", random.Random(1))]


def test_pacing_spreads_invites_at_max_cps() -> None:
    t = make("t", max_cps=5.0)
    delays = [t.pace(100.0) for _ in range(4)]
    assert delays == pytest.approx([0.0, 0.2, 0.4, 0.6])
    assert t.pace(110.0) == 0.0  # idle long enough: no backlog, no burst saved up either
    assert t.counters.paced == 3
    assert make("u").pace(1.0) == 0.0  # no max_cps: never delayed


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "+442071230001"),
        ({"number_format": "e164-digits"}, "442071230001"),
        ({"number_format": "national", "country_code": "44", "national_prefix": "0"}, "02071230001"),
        ({"number_format": "national", "country_code": "1"}, "00442071230001"),  # another country
        ({"number_format": "e164-digits", "strip_digits": 2, "tech_prefix": "1234#"}, "1234#2071230001"),
    ],
)
def test_number_format(settings: dict[str, object], expected: str) -> None:
    assert format_number("+442071230001", make("t", **settings).settings) == expected


@pytest.mark.parametrize(
    ("code", "by", "rang", "expected"),
    [
        (503, EndedBy.REMOTE, False, True),
        (500, EndedBy.REMOTE, False, True),
        (408, EndedBy.REMOTE, False, True),
        (None, EndedBy.NETWORK, False, True),  # ICMP
        (408, EndedBy.TIMEOUT, False, True),  # Timer B
        (486, EndedBy.REMOTE, False, False),  # busy: the callee said so
        (404, EndedBy.REMOTE, False, False),
        (603, EndedBy.REMOTE, False, False),
        (503, EndedBy.REMOTE, True, False),  # after a 18x: never
    ],
)
def test_fails_over(code: int | None, by: EndedBy, rang: bool, expected: bool) -> None:
    assert fails_over(code, by, rang) is expected


def test_every_trunk_down_still_tries_them() -> None:
    """The keep-alive can be wrong (OPTIONS filtered while INVITEs pass): with no trunk up,
    the ones that carry the number are tried rather than no call placed at all."""
    a, b = make("a"), make("b", prefixes=("+44",))
    a.up = b.up = False
    trunks = TrunkSet([a, b])
    assert [t.name for t in trunks.candidates("+15551230001", random.Random(1))] == ["a"]
