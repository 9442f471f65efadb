"""The node id: configurable, else the host name and a suffix kept in the state directory, and
locked so that two processes on one machine never run as the same node."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.conftest import make_settings
from webcallback.config import ConfigError
from webcallback.service.dispatcher import node_name
from webcallback.service.node import NodeInUse, NodeLock, node_id


def test_the_configured_id_is_used_as_it_is(tmp_path: Path) -> None:
    settings = make_settings("sqlite://", node__id="cb-1.example", node__state_dir=str(tmp_path))
    assert node_id(settings) == node_name(settings) == "cb-1.example"
    assert list(tmp_path.iterdir()) == []  # nothing generated
    with pytest.raises(ConfigError, match=r"node\.id"):
        node_id(make_settings("sqlite://", node__id="x" * 65))


def test_the_default_is_stable_per_state_directory_and_differs_between_them(tmp_path: Path) -> None:
    first = make_settings("sqlite://", node__state_dir=str(tmp_path / "a"))
    other = make_settings("sqlite://", node__state_dir=str(tmp_path / "b"))
    one = node_id(first)
    assert one.startswith(socket.gethostname()[:40] + "-") and len(one) <= 64
    assert node_id(first) == one  # restarts keep it: crash recovery finds its own calls
    assert (tmp_path / "a" / "node-id").read_text().strip() == one.rpartition("-")[2]
    assert node_id(other) != one  # two instances, two state directories: two nodes


def test_a_second_process_cannot_hold_the_same_node(tmp_path: Path) -> None:
    with NodeLock(str(tmp_path), "host:1"):
        # flock locks belong to the open file, so a second open in this process conflicts too,
        # exactly as another process would.
        with pytest.raises(NodeInUse, match="node host:1 is already running on this machine"):
            NodeLock(str(tmp_path), "host:1").acquire()
        with NodeLock(str(tmp_path), "host:2"):  # another id is another node
            pass
    with NodeLock(str(tmp_path), "host:1") as again:  # released: free again
        assert again.path.read_text().strip() == str(os.getpid())
