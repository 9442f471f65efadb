"""The event streams (`GET /api/v1/events`): each stream reads the event log after the last id it
sent, and sleeps until this process writes an event (`EventBus.written`, told by the store after
its commit) or the heartbeat is due. Events written by other processes (other nodes, the CLI) are
noticed by one shared look at the log's last id every `events.poll_interval`, for all streams, and
only while streams are open. At most `events.max_streams` streams at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from webcallback.config import EventSettings
from webcallback.domain.events import Event, EventFilter
from webcallback.errors import ServiceUnavailable
from webcallback.store.db import Database
from webcallback.store.events import EventStore

log = logging.getLogger(__name__)

BATCH = 500  # events read per query


class EventBus:
    def __init__(self, db: Database, settings: EventSettings) -> None:
        self._db = db
        self._settings = settings
        self.store = EventStore(db)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Event] = set()
        self._streams = 0
        self._poller: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.on_loop: list[Callable[[], None]] = []  # run on the loop by `outbox_written`

    @property
    def streams(self) -> int:
        return self._streams

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def written(self) -> None:
        """Events were committed: wake every waiter. From any thread; a no-op before `attach`."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._wake)

    def outbox_written(self) -> None:
        """Deliveries were queued: tell `on_loop` listeners (the deliverer), on the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for listener in self.on_loop:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(listener)

    def _wake(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    def close(self) -> None:
        """End every stream (the service is stopping: uvicorn waits for open responses)."""
        self.closed.set()
        self._wake()

    def check_capacity(self) -> None:
        """Refuse (503) a stream beyond `events.max_streams`; called before the response starts."""
        if self._streams >= self._settings.max_streams:
            raise ServiceUnavailable(
                "Too many event streams are open; try again later.",
                error_id="too-many-streams",
                retry_after=5,
            )
        if self.closed.is_set():
            raise ServiceUnavailable("The service is stopping.", error_id="stopping", retry_after=5)

    async def stream(self, wanted: EventFilter, last_id: int | None) -> AsyncIterator[Event | None]:
        """The events after `last_id` (None: from now on) that `wanted` matches, in id order, as
        they are written; None when a heartbeat is due. Ends when the bus closes."""
        self.check_capacity()
        self._streams += 1
        wake = asyncio.Event()
        self._waiters.add(wake)
        self._start_poller()
        try:
            if last_id is None:
                last_id = await self._db.run(self.store.last_id)
            while not self.closed.is_set():
                wake.clear()
                batch = await self._db.run(self.store.after, last_id, wanted, BATCH)
                for event in batch:
                    last_id = event.id
                    yield event
                if len(batch) == BATCH:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._settings.heartbeat)
                    continue
                yield None
        finally:
            self._waiters.discard(wake)
            self._streams -= 1

    def _start_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="events-poll")

    async def _poll(self) -> None:
        """While streams are open: one look at the last id for all of them (other writers)."""
        seen = -1
        while self._waiters and not self.closed.is_set():
            try:
                last = await self._db.run(self.store.last_id)
                if last != seen:
                    if seen >= 0:
                        self._wake()
                    seen = last
            except Exception as exc:  # a database hiccup: the streams see it on their next read
                log.debug("event poll failed: %r", exc)
            await asyncio.sleep(self._settings.poll_interval)
