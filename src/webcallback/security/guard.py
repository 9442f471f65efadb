"""The abuse controls on the request path, in the order `CallbackService.request_callback` calls
them:

1. `screen_client`   — per-address request rate; client country (GeoIP) deny list.
2. `authenticate`    — refuses locked-out users and addresses before checking anything, then counts
                       failed logins and locks out past the threshold.
3. `screen_account`  — per-user request rate.
4. `check_numbers`   — toll-fraud policy on both normalised numbers; registered callback numbers.
5. `duplicate_of`    — the same account, same two numbers, within the window, still in progress:
                       the existing callback.
6. `check_daily`     — callbacks and spend per account per 24 hours.
7. `hold_slot`       — the per-account concurrency slot (atomic in the store); released by
                       `release` when the callback ends (`Services.on_callback_finished`) or when
                       admission fails.

Every refusal is an `ApiError` whose message the app shows (under 100 characters) and a security
event. Failed-login counters, lockouts and slots live in the store, so several nodes agree; the
request-rate counters are per node, in memory (`security.ratelimit` says why).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from webcallback.config import ConfigError, Settings
from webcallback.domain import CallOutcome
from webcallback.errors import AuthenticationFailed, Forbidden, TooManyRequests
from webcallback.security import events as ev
from webcallback.security.events import SecurityEvents
from webcallback.security.policy import TYPE_NAMES, check_number
from webcallback.security.ratelimit import SlidingWindowCounters
from webcallback.security.store import SecurityStore, subject_key
from webcallback.service.auth import Authenticator, Credentials
from webcallback.store.accounts import Account
from webcallback.store.callbacks import Callback
from webcallback.store.db import Database
from webcallback.store.nonces import NonceStore

DAY = 86400
MINUTE = 60
PURGE_EVERY = 500
QUIET_ENTRIES = 10_000
EVENT_RETENTION = 90 * DAY
# Failed logins that count towards a lockout; a first request without credentials (the Digest
# challenge round) or an expired Digest nonce does not.
COUNTED_FAILURES = ("authentication-failed", "nonce-replayed")

LOCKED_OUT = "Too many failed logins. Try again in {minutes} min."
RATE_LIMITED = "Too many requests. Please wait a minute."
BUSY = "A callback is already in progress. Please wait until it ends."
DAILY_CALLBACKS = "Daily callback limit reached. Please try again later."
DAILY_SPEND = "Daily spending limit reached. Please try again later."
NOT_REGISTERED = "This callback number is not registered for your account."
COUNTRY_REFUSED = "Callbacks are not available from your location."
DUPLICATE_WAIT = 2.0


class SpendMeter(Protocol):
    """What an account has spent since a moment (billing implements it)."""

    async def spent_since(self, account: Account, since: datetime) -> Decimal: ...


class SecurityGuard:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        events: SecurityEvents | None = None,
        spend_meter: SpendMeter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = set(settings.security.policy.refused_types) - set(TYPE_NAMES.values())
        if unknown:
            raise ConfigError("security.policy.refused_types", f"unknown number type {sorted(unknown)[0]}")
        self._sec = settings.security
        self._db = db
        self._store = SecurityStore(db)
        self._nonces = NonceStore(db)  # the salted-hash nonces are forgotten here too
        self._nonce_window = settings.auth.nonce_window
        self.events = events or SecurityEvents(db, persist=settings.security.log_events, clock=clock)
        self.spend_meter = spend_meter
        self._clock = clock
        self._calls = 0
        self._quiet: dict[str, float] = {}
        self._request_rates = SlidingWindowCounters(MINUTE)  # per node: see security.ratelimit

    # ---- 1. the client ---------------------------------------------------------------------

    async def screen_client(self, client_ip: str, country: str | None) -> None:
        await self._housekeeping()
        limit = self._sec.limits.requests_per_minute_per_ip
        if limit and self._request_rates.hit("ip:" + client_ip, self._clock()) > limit:
            if self._first_in_a_while("ip-rate:" + client_ip):
                await self.events.record(ev.RATE_LIMITED, "ip-rate", client_ip=client_ip)
            raise TooManyRequests(RATE_LIMITED, retry_after=MINUTE, error_id="rate-limited")
        denied = {c.upper() for c in self._sec.policy.deny_client_countries}
        if country is not None and country in denied:
            await self.events.record(ev.POLICY, "client-country", client_ip=client_ip, detail=country)
            raise Forbidden(COUNTRY_REFUSED, error_id="country-refused")

    # ---- 2. authentication with lockout ----------------------------------------------------

    async def authenticate(self, auth: Authenticator, creds: Credentials, client_ip: str) -> Account:
        username = auth.claimed_username(creds)
        await self._refuse_locked(username, client_ip)
        try:
            account = await auth.authenticate(creds)
        except AuthenticationFailed as exc:
            if exc.error_id in COUNTED_FAILURES:
                await self._count_failure(username, client_ip, exc.error_id)
            raise
        if self._sec.lockout.max_failures_per_user:
            await self._db.run(self._store.reset, "fail:" + subject_key("user", account.username))
        return account

    def _lock_keys(self, username: str | None, client_ip: str) -> list[str]:
        return [subject_key("ip", client_ip)] + ([subject_key("user", username)] if username else [])

    async def _refuse_locked(self, username: str | None, client_ip: str) -> None:
        now = self._clock()
        until = await self._db.run(self._store.locked_until, self._lock_keys(username, client_ip), now)
        if until is None:
            return
        if self._first_in_a_while(f"locked:{username}:{client_ip}"):
            await self.events.record(ev.LOCKED, "locked-out", username=username, client_ip=client_ip)
        wait = max(1, math.ceil(until - now))
        raise TooManyRequests(
            LOCKED_OUT.format(minutes=math.ceil(wait / 60)), retry_after=wait, error_id="locked-out"
        )

    async def _count_failure(self, username: str | None, client_ip: str, reason: str) -> None:
        await self.events.record(ev.AUTH_FAILED, reason, username=username, client_ip=client_ip)
        lockout = self._sec.lockout
        now = self._clock()
        checks = [(subject_key("ip", client_ip), lockout.max_failures_per_ip)]
        if username:
            checks.append((subject_key("user", username), lockout.max_failures_per_user))
        locked = False
        for key, limit in checks:
            if not limit:
                continue
            count = await self._db.run(self._store.hit, "fail:" + key, lockout.window, now)
            if count >= limit:
                locked = True
                await self._db.run(
                    self._store.lock, key, now + lockout.duration, f"{limit} failed logins", now
                )
                await self.events.record(
                    ev.LOCKOUT, key.split(":", 1)[0], username=username, client_ip=client_ip, detail=key
                )
        if locked:  # the failure that locks is already answered with the lockout
            minutes = math.ceil(lockout.duration / 60)
            raise TooManyRequests(
                LOCKED_OUT.format(minutes=minutes),
                retry_after=max(1, lockout.duration),
                error_id="locked-out",
            )

    # ---- 3. the account --------------------------------------------------------------------

    async def screen_account(self, account: Account, client_ip: str) -> None:
        limit = self._sec.limits.requests_per_minute_per_user
        if limit and self._request_rates.hit("user:" + account.username, self._clock()) > limit:
            if self._first_in_a_while("user-rate:" + account.username):
                await self.events.record(
                    ev.RATE_LIMITED, "user-rate", username=account.username, client_ip=client_ip
                )
            raise TooManyRequests(RATE_LIMITED, retry_after=MINUTE, error_id="rate-limited")

    # ---- 4. the numbers --------------------------------------------------------------------

    async def check_numbers(self, account: Account, destination: str, callback: str, client_ip: str) -> None:
        policy = self._sec.policy
        for number, rules, what in (
            (destination, policy.destination, "destination number"),
            (callback, policy.callback, "callback number"),
        ):
            refusal = check_number(number, rules, policy.refused_types, what)
            if refusal is not None:
                leg = what.split()[0]
                reason = f"{leg}-{refusal.reason.split(':')[0]}"
                await self._refuse_number(account, client_ip, reason, f"{refusal.reason} {number}")
                raise Forbidden(refusal.message, error_id="number-refused")
        must_register = policy.callback_must_be_registered and callback != account.callback_number
        if must_register and not await self._db.run(self._store.is_registered, account.id, callback):
            await self._refuse_number(account, client_ip, "callback-not-registered", callback)
            raise Forbidden(NOT_REGISTERED, error_id="callback-not-registered")

    async def _refuse_number(self, account: Account, client_ip: str, reason: str, detail: str) -> None:
        await self.events.record(
            ev.POLICY, reason, username=account.username, client_ip=client_ip, detail=detail
        )

    # ---- 5. duplicates ---------------------------------------------------------------------

    async def duplicate_of(self, account: Account, destination: str, callback: str) -> str | None:
        window = self._sec.limits.duplicate_window
        if not window:
            return None
        since = self._clock() - window
        return await self._db.run(self._store.recent_duplicate, account.id, destination, callback, since)

    # ---- 6. daily caps ---------------------------------------------------------------------

    async def check_daily(self, account: Account, client_ip: str) -> None:
        limits = self._sec.limits
        since = self._clock() - DAY
        if limits.callbacks_per_day:
            count = await self._db.run(
                self._store.callbacks_since, account.id, since, limits.callbacks_per_day
            )
            if count >= limits.callbacks_per_day:
                await self.events.record(
                    ev.LIMIT, "daily-callbacks", username=account.username, client_ip=client_ip
                )
                raise TooManyRequests(DAILY_CALLBACKS, retry_after=3600, error_id="daily-limit")
        if limits.spend_per_day and self.spend_meter is not None:
            spent = await self.spend_meter.spent_since(account, datetime.fromtimestamp(since, UTC))
            if spent >= Decimal(str(limits.spend_per_day)):
                await self.events.record(
                    ev.LIMIT, "daily-spend", username=account.username, client_ip=client_ip
                )
                raise TooManyRequests(DAILY_SPEND, retry_after=3600, error_id="spend-limit")

    # ---- 7. concurrency --------------------------------------------------------------------

    async def hold_slot(
        self, account: Account, callback_id: str, destination: str, callback: str, client_ip: str
    ) -> str | None:
        """Take a concurrency slot for `callback_id`: None when taken. When the account is busy
        with the very same two numbers (a simultaneous duplicate), the id of that callback."""
        limit = self._sec.limits.concurrent_callbacks_per_user
        if not limit:
            return None
        now = self._clock()
        acquire = self._store.acquire_slot
        if await self._db.run(acquire, account.id, limit, callback_id, destination, callback, now):
            return None
        window = self._sec.limits.duplicate_window
        if window:
            holder = await self._db.run(self._store.slot_for, account.id, destination, callback, now - window)
            if holder is not None and await self._wait_for_row(holder):
                return holder
        await self.events.record(ev.LIMIT, "concurrency", username=account.username, client_ip=client_ip)
        raise TooManyRequests(BUSY, retry_after=30, error_id="too-many-callbacks")

    async def _wait_for_row(self, callback_id: str) -> bool:
        """A simultaneous duplicate's row appears once its request passes admission."""
        self._db.commit_unit()  # waiting on the loop: release SQLite's write lock meanwhile
        deadline = time.monotonic() + DUPLICATE_WAIT
        while time.monotonic() < deadline:
            if await self._db.run(self._store.callback_exists, callback_id):
                return True
            await asyncio.sleep(0.02)
        return False

    async def release(self, callback_id: str) -> None:
        await self._db.run(self._store.release_slot, callback_id)

    async def on_callback_finished(self, callback: Callback, _outcome: CallOutcome) -> None:
        """The `Services.on_callback_finished` hook: the slot is free once the callback ends."""
        await self.release(callback.id)

    # ---- housekeeping ----------------------------------------------------------------------

    def _first_in_a_while(self, key: str) -> bool:
        """Repeated refusals of one source (a flood while locked out or over a rate) are recorded
        once a minute per node, so that a flood does not become a flood of event rows."""
        now = self._clock()
        if len(self._quiet) > QUIET_ENTRIES:
            self._quiet.clear()
        if now - self._quiet.get(key, -math.inf) < MINUTE:
            return False
        self._quiet[key] = now
        return True

    async def _housekeeping(self) -> None:
        self._calls += 1
        if self._calls % PURGE_EVERY:
            return
        age = 2 * max(MINUTE, self._sec.lockout.window)
        await self._db.run(self._store.purge, self._clock(), counter_age=age, event_age=EVENT_RETENTION)
        await self._db.run(self._nonces.forget_older_than, self._nonce_window)
