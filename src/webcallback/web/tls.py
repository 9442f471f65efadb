"""Serving HTTPS directly: one `SSLContext` with a minimum TLS version, whose certificate can be
reloaded in place (SIGHUP). `load_cert_chain` on the live context changes what new handshakes
present; connections already open keep theirs. A reload that fails (a half-written file) keeps
the old certificate and logs why."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from types import FrameType

log = logging.getLogger(__name__)

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class ReloadableCertificate:
    def __init__(self, certfile: str, keyfile: str, min_version: str = "1.2") -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = TLS_VERSIONS[min_version]
        self.context.options |= ssl.OP_NO_COMPRESSION
        self._lock = threading.Lock()
        self.context.load_cert_chain(certfile, keyfile)

    def reload(self) -> bool:
        """Read the certificate and key files again; False (old ones kept) if they do not load."""
        with self._lock:
            try:
                self.context.load_cert_chain(self.certfile, self.keyfile)
            except (OSError, ssl.SSLError) as exc:
                log.error("TLS certificate reload failed, keeping the old one: %s", exc)
                return False
        log.info("TLS certificate reloaded from %s", self.certfile)
        return True

    def install_sighup(self) -> None:
        """Reload on SIGHUP (main thread only, as Python signal handlers must be)."""

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.reload()

        signal.signal(signal.SIGHUP, handler)
