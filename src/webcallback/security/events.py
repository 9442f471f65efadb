"""The security events log: failed logins, lockouts, refusals. Every event goes to the
`webcallback.security` logger and (unless `security.log_events` is off) to the `security_events`
table that `webcallback security events` reads. Events never carry a password, hash or Digest
response: only the claimed username, the client address, a reason slug and a short detail."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from webcallback.security.store import SecurityStore
from webcallback.store.db import Database

log = logging.getLogger("webcallback.security")

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

AUTH_FAILED = "auth-failed"
LOCKOUT = "lockout"
LOCKED = "locked"
RATE_LIMITED = "rate-limited"
POLICY = "policy-refused"
LIMIT = "limit"
DUPLICATE = "duplicate"


def clean(text: str | None, limit: int = 64) -> str | None:
    """Attacker-chosen text made safe for a log line: no control characters, bounded length."""
    if text is None:
        return None
    return _UNPRINTABLE.sub("?", text)[:limit]


class SecurityEvents:
    def __init__(self, db: Database, *, persist: bool, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._store = SecurityStore(db)
        self._persist = persist
        self._clock = clock

    async def record(
        self,
        kind: str,
        reason: str,
        *,
        username: str | None = None,
        client_ip: str | None = None,
        detail: str | None = None,
    ) -> None:
        username, detail = clean(username), clean(detail, 255)
        log.warning(
            "security event=%s reason=%s user=%s ip=%s%s",
            kind,
            reason,
            username or "-",
            client_ip or "-",
            f" detail={detail}" if detail else "",
        )
        if self._persist:
            await self._db.run(
                self._store.add_event,
                kind,
                reason,
                username=username,
                client_ip=client_ip,
                detail=detail,
                now=self._clock(),
            )
