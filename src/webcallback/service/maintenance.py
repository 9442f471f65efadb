"""Housekeeping while the service runs: forget used nonces older than `auth.nonce_window` and
events older than `events.retention_days` (with their webhook deliveries), and on
SQLite checkpoint the write-ahead log in a background thread (`Database.start_checkpointer`).

Without the pruning `used_nonces` grows by one row per salted-hash request forever. Every node may
run it; the DELETE is idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from webcallback.service.container import Services
from webcallback.store.nonces import NonceStore

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0  # seconds


async def prune_nonces_forever(services: Services, every: float = PRUNE_EVERY) -> None:
    nonces = NonceStore(services.db)
    while True:
        try:
            removed = await services.db.run(nonces.forget_older_than, services.settings.auth.nonce_window)
            if removed:
                log.info("forgot %d used nonces older than %ss", removed, services.settings.auth.nonce_window)
        except Exception:  # a database hiccup must not end housekeeping for good
            log.exception("pruning used nonces failed")
        await purge_events(services)
        await asyncio.sleep(every)


async def purge_events(services: Services) -> int:
    days = services.settings.events.retention_days
    if days <= 0:
        return 0
    try:
        removed = await services.db.run(services.events.store.purge, days)
    except Exception:
        log.exception("purging old events failed")
        return 0
    if removed:
        log.info("purged %d events older than %s days", removed, days)
    return removed


@contextlib.asynccontextmanager
async def housekeeping(services: Services) -> AsyncIterator[None]:
    services.db.start_checkpointer()
    task = asyncio.create_task(prune_nonces_forever(services), name="housekeeping")
    try:
        yield
    finally:
        services.db.stop_checkpointer()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
