"""What happened to a callback or one of its legs, as the event log and its consumers (the
`/api/v1/events` stream, webhooks) see it. Written by the store in the transaction of the state
change it describes; ids grow with the order of those commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit


def check_webhook_url(url: str, *, allow_http: bool = False) -> str:
    """A webhook URL: `https://` (or `http://` when allowed) with a host; ValueError otherwise."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or len(url) > 2000:
        raise ValueError(f"{url!r} is not an {' or '.join(schemes)} URL")
    return url


@dataclass(frozen=True)
class NewEvent:
    """An event about to be written: `type` like `callback.queued` or `leg.ringing`."""

    type: str
    callback_id: str
    account: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """A stored event."""

    id: int
    type: str
    callback_id: str
    account: str | None
    at: datetime
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "callback_id": self.callback_id,
            "account": self.account,
            "at": self.at.isoformat(),
            "data": self.data,
        }


@dataclass(frozen=True)
class EventFilter:
    """What a stream or a listing wants: empty tuples match everything."""

    callback_ids: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # exact types, or a prefix ending in `.` (`leg.`)

    def matches(self, event: Event) -> bool:
        if self.callback_ids and event.callback_id not in self.callback_ids:
            return False
        if self.accounts and event.account not in self.accounts:
            return False
        return not self.types or any(
            event.type == t or (t.endswith(".") and event.type.startswith(t)) for t in self.types
        )
