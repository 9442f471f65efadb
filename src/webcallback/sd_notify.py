"""systemd's readiness protocol (sd_notify(3)), without a dependency: one datagram to the unix
socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). Outside systemd
(`NOTIFY_SOCKET` unset) every call does nothing. Used by `webcallback run` with `Type=notify`:
`READY=1` once the HTTP socket is bound and the engine and dispatcher have started, `STOPPING=1`
when the shutdown begins, `STATUS=` lines an operator sees in `systemctl status`."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `message` (e.g. `"READY=1\\nSTATUS=serving"`); True when a notify socket took it."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:  # systemd gone or a wrong path: the service itself is fine
        log.warning("sd_notify to %s failed: %s", address.replace("\0", "@"), exc)
        return False
    return True
