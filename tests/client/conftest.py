from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from .standin import StandIn, running_standin


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with running_standin() as state:
        yield state


@pytest.fixture
def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/webcallback"
