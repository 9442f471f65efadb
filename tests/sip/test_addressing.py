from __future__ import annotations

import pytest

from webcallback.domain import EngineError
from webcallback.engines.sip.addressing import (
    LAB_TRUNK,
    HostPort,
    from_identity,
    parse_hostport,
    parse_trunk,
    trunk_next_hop,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5070", HostPort("127.0.0.1", 5070)),
        ("sbc.example.net", HostPort("sbc.example.net", 5060)),
        ("[::1]:5071", HostPort("::1", 5071)),
        ("[2001:db8::1]", HostPort("2001:db8::1", 5060)),
    ],
)
def test_parse_hostport(text: str, expected: HostPort) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["", ":5060", "host:abc", "host:70000", "[::1", "[::1]x"])
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(EngineError, match="listen"):
        parse_hostport(text, what="engine.sip.listen")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:trunk.example.net:5060", HostPort("trunk.example.net", 5060)),
        ("sip:trunk.example.net;transport=udp", HostPort("trunk.example.net", 5060)),
        ("sip:gw@10.0.0.1:5080", HostPort("10.0.0.1", 5080)),
        ("10.0.0.2", HostPort("10.0.0.2", 5060)),
        (None, parse_trunk(LAB_TRUNK)),
    ],
)
def test_parse_trunk(uri: str | None, expected: HostPort) -> None:
    assert parse_trunk(uri) == expected


def test_sips_is_refused() -> None:
    with pytest.raises(EngineError, match="TLS"):
        parse_trunk("sips:trunk.example.net")


def test_every_number_goes_to_the_trunk() -> None:
    hop = trunk_next_hop(HostPort("10.0.0.1", 5080))
    assert hop("+15551230001") == hop("+4420") == ("10.0.0.1", 5080)
    assert str(HostPort("::1", 5060)) == "[::1]:5060"


@pytest.mark.parametrize(
    ("caller_id", "expected"),
    [
        ("+15551230001", ("+15551230001", "+15551230001")),
        ('John "Q" Doe', ("JohnQDoe", "John Q Doe")),
        ("", ("anonymous", "anonymous")),
        ("+1 (555) 123", ("+1555123", "+1 (555) 123")),
    ],
)
def test_from_identity(caller_id: str, expected: tuple[str, str]) -> None:
    assert from_identity(caller_id) == expected


def test_port_0_only_where_any_port_may_be_bound() -> None:
    with pytest.raises(EngineError, match="out of range"):
        parse_hostport("127.0.0.1:0")
    assert parse_hostport("127.0.0.1:0", any_port=True) == HostPort("127.0.0.1", 0)
    with pytest.raises(EngineError, match="out of range"):
        parse_hostport("127.0.0.1:65536", any_port=True)
