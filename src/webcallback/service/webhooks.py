"""Webhook delivery from the persisted outbox (`webhook_outbox`, written with each event).

A background task POSTs each due row's event as JSON, signed:

    Webcallback-Timestamp: <unix seconds>
    Webcallback-Signature: hex(HMAC-SHA256(secret, timestamp + "." + body))

A 2xx delivers it; anything else (status, timeout, refused connection) is logged in
`webhook_attempts` and tried again after `backoff_initial` · 2^(attempts-1) seconds (at most
`backoff_max`), up to `max_attempts`, then it is `dead` until `webcallback webhooks retry`. At
least once: a row is leased (its `next_at` moved past the attempt) before the POST, so a crash
mid-attempt retries it after the lease. Calls never wait on this: the dispatcher only writes the
rows; deliveries run here, at most `concurrency` at once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from webcallback.config import WebhookSettings
from webcallback.domain.events import check_webhook_url
from webcallback.passwords import PasswordCipher
from webcallback.service.container import Services
from webcallback.store.events import ACCOUNT, DEAD, DELIVERED, PENDING, Delivery, EventStore, OutboxRow

log = logging.getLogger(__name__)

BATCH = 50
IDLE_CHECK = 10.0  # seconds: the longest sleep with nothing due (other nodes' rows; restarts)
SIGNATURE_HEADER = "Webcallback-Signature"
TIMESTAMP_HEADER = "Webcallback-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff(settings: WebhookSettings, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones."""
    return float(min(settings.backoff_max, settings.backoff_initial * 2 ** max(0, attempts - 1)))


class WebhookDeliverer:
    def __init__(self, services: Services, client: httpx.AsyncClient | None = None) -> None:
        self._services = services
        self._settings = services.settings.webhooks
        self._store = EventStore(services.db)
        self._cipher: PasswordCipher = services.cipher
        self._client = client or httpx.AsyncClient(timeout=self._settings.timeout, follow_redirects=False)
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max(1, self._settings.concurrency))
        self._running: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._deliver_due()
                pause = await self._pause()
            except Exception:  # a database outage: try again a little later
                log.exception("webhook delivery pass failed")
                pause = self._settings.backoff_initial
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _pause(self) -> float:
        due = await self._services.db.run(self._store.next_due)
        if due is None:
            return IDLE_CHECK
        return min(IDLE_CHECK, max(0.05, (due - datetime.now(UTC)).total_seconds()))

    async def _deliver_due(self) -> None:
        due = await self._services.db.run(self._store.due, BATCH)
        for delivery in due:
            lease = self._settings.timeout + 30.0
            if not await self._services.db.run(self._store.lease, delivery, lease):
                continue  # another node took it
            await self._slots.acquire()
            task = asyncio.create_task(self._attempt(delivery), name=f"webhook-{delivery.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            status, error, seconds = await self._post(delivery)
            attempts = delivery.attempts + 1
            if status is not None and 200 <= status < 300:
                state, retry_in = DELIVERED, 0.0
            elif attempts >= self._settings.max_attempts:
                state, retry_in = DEAD, 0.0
                log.warning(
                    "webhook %s to %s given up after %d attempts (%s)",
                    delivery.id,
                    delivery.url,
                    attempts,
                    error or status,
                )
            else:
                state, retry_in = PENDING, backoff(self._settings, attempts)
            await self._services.db.run(
                self._store.attempted, delivery.id, status, error, seconds, state=state, retry_in=retry_in
            )
            if state == PENDING:
                self._schedule_wake(retry_in)
        except Exception:  # the lease expires and the row is tried again
            log.exception("webhook %s: recording the attempt failed", delivery.id)
        finally:
            self._slots.release()

    def _schedule_wake(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self._wake.set)

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None, float]:
        body = json.dumps(delivery.event.as_json(), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            "Webcallback-Event": delivery.event.type,
            "Webcallback-Delivery": str(delivery.id),
        }
        secret = await self._secret(delivery)
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        started = time.perf_counter()
        try:
            response = await self._client.post(
                delivery.url, content=body, headers=headers, timeout=self._settings.timeout
            )
            return response.status_code, None, time.perf_counter() - started
        except httpx.HTTPError as exc:
            return None, (type(exc).__name__ + ": " + str(exc))[:255], time.perf_counter() - started

    async def _secret(self, delivery: Delivery) -> str | None:
        if delivery.target == ACCOUNT and delivery.account:
            hook = await self._services.db.run(self._store.account_webhook, delivery.account)
            if hook is None or hook.secret_enc is None or hook.key_id is None:
                return None
            return self._cipher.decrypt(delivery.account, hook.secret_enc, hook.key_id)
        secret = self._settings.secret
        return secret.reveal() if secret else None

    async def aclose(self) -> None:
        """Let attempts in flight finish (at most `timeout`), so their outcome is logged."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=self._settings.timeout)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._client.aclose()


@contextlib.asynccontextmanager
async def webhooks_hook(services: Services) -> AsyncIterator[None]:
    """Lifespan hook: attach the event bus to the loop and run the deliverer."""
    services.events.attach(asyncio.get_running_loop())
    deliverer = WebhookDeliverer(services)
    services.events.on_loop.append(deliverer.wake)
    task = asyncio.create_task(deliverer.run_forever(), name="webhooks")
    try:
        yield
    finally:
        services.events.close()
        services.events.on_loop.remove(deliverer.wake)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await deliverer.aclose()


# ---- what the CLI manages ------------------------------------------------------------------


check_url = check_webhook_url


def set_account_webhook(
    services: Services, username: str, url: str, secret: str | None, events: tuple[str, ...]
) -> None:
    """Give `username` its own webhook (its secret encrypted with the password key)."""
    from webcallback.config import EVENT_TYPES
    from webcallback.store.events import AccountWebhook

    unknown = [t for t in events if t not in EVENT_TYPES and not t.endswith(".")]
    if unknown:
        raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
    account = _account(services, username)
    blob, kid = services.cipher.encrypt(username, secret) if secret else (None, None)
    hook = AccountWebhook(url=url, secret_enc=blob, key_id=kid, events=events)
    EventStore(services.db).set_account_webhook(account.id, hook)
    services.callbacks.events.forget_accounts()


def _account(services: Services, username: str) -> Any:
    """The account, or LookupError."""
    found = services.accounts.find(username)
    if found is None:
        raise LookupError(username)
    return found


def clear_account_webhook(services: Services, username: str) -> bool:
    account = _account(services, username)
    gone = EventStore(services.db).clear_account_webhook(account.id)
    services.callbacks.events.forget_accounts()
    return gone


def account_webhook(services: Services, username: str) -> dict[str, object] | None:
    hook = EventStore(services.db).account_webhook(username)
    if hook is None:
        return None
    return {"url": hook.url, "signed": hook.secret_enc is not None, "events": list(hook.events)}


def deliveries(services: Services, state: str | None, limit: int) -> list[OutboxRow]:
    return EventStore(services.db).outbox(state, limit)


def delivery_log(services: Services, box_id: int) -> list[dict[str, object]]:
    return EventStore(services.db).attempts(box_id)


def retry(services: Services, box_ids: tuple[int, ...], *, dead: bool) -> int:
    return EventStore(services.db).retry(box_ids, dead=dead)
