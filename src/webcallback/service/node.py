"""This node's id, and the lock that keeps two processes on one machine from sharing it.

The dispatcher stores the id with every callback it claims and, at start-up, fails as
`interrupted` what the same id left in flight, so an id must be stable across restarts and never
used by two live processes (the second would fail the first one's calls). `[node] id` sets it;
unset, it is the host name and a random suffix generated once and kept in `node.state_dir`
(`node-id`), so two instances with their own state directories differ even on one host.
`NodeLock` (held by `webcallback run`) refuses a second process with the same id on this machine.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
from pathlib import Path
from types import TracebackType

from webcallback.config import ConfigError, Settings

MAX_LENGTH = 64  # callbacks.node
ID_FILE = "node-id"


def node_id(settings: Settings) -> str:
    """The configured id, else `<hostname>-<suffix>` with the suffix kept in the state directory."""
    if settings.node.id is not None:
        if not 0 < len(settings.node.id) <= MAX_LENGTH:
            raise ConfigError("node.id", f"must be 1 to {MAX_LENGTH} characters")
        return settings.node.id
    state = Path(settings.node.state_dir)
    suffix = _read_or_create_suffix(state / ID_FILE)
    return f"{socket.gethostname()[: MAX_LENGTH - len(suffix) - 1]}-{suffix}"


def _read_or_create_suffix(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = secrets.token_hex(4)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return path.read_text(encoding="ascii").strip()[:16]
    with os.fdopen(fd, "w") as fh:
        fh.write(suffix + "\n")
    return suffix


class NodeInUse(Exception):
    """Another live process on this machine runs as the same node."""


class NodeLock:
    """An exclusive `flock` on `<state_dir>/node-<id>.lock` for the life of the process; the
    kernel drops it when the process dies, however it dies."""

    def __init__(self, state_dir: str, node: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", node)
        self.path = Path(state_dir) / f"node-{safe}.lock"
        self.node = node
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NodeInUse(
                f"node {self.node} is already running on this machine (lock {self.path}); give each "
                "instance its own node.state_dir or node.id, and its own engine.sip.listen port"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()
