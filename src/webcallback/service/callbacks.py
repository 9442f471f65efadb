"""Accepting a web callback request: authenticate, normalise both numbers, check credit, queue.

The security controls (`security.guard`) sit along the way: rate and country screening and the
lockout before authentication, failed logins counted, the per-user rate after it, the toll-fraud
policy after normalisation, then duplicate suppression, daily caps and the per-user concurrency
slot before the credit gate admits the call.

The HTTP layer hands in a `CallbackRequest` (raw values, whatever names and format the app used);
this returns the queued `Callback` or raises an `ApiError`. Subscribers (the dispatcher, through
`subscribe`) are told of each queued callback, so it starts within milliseconds instead of at the
next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from webcallback import geoip
from webcallback.config import Settings
from webcallback.domain import Admission
from webcallback.domain.events import check_webhook_url
from webcallback.errors import NOT_ENOUGH_CREDIT, ApiError, BadRequest, Forbidden
from webcallback.numbers import to_e164
from webcallback.security.guard import SecurityGuard
from webcallback.service.auth import Authenticator, Credentials
from webcallback.service.shedding import LoadShedder
from webcallback.store.accounts import Account
from webcallback.store.callbacks import Callback, CallbackStore, new_callback_id
from webcallback.store.db import Database


@dataclass(frozen=True)
class CallbackRequest:
    credentials: Credentials
    target: str | None
    callback: str | None
    client_ip: str
    status_url: str | None = None  # the app's per-callback status URL (`[webhooks] allow_request_url`)


class CreditGate(Protocol):
    """Decides whether an account may place a callback. Billing implements it with rates and
    reservations; the default only refuses accounts with nothing left."""

    async def admit(self, account: Account, destination: str, callback: str, callback_id: str) -> Admission:
        """Allow (reserving what the call may cost under `callback_id`) or raise an ApiError."""
        ...


class PositiveBalanceGate:
    async def admit(self, account: Account, destination: str, callback: str, callback_id: str) -> Admission:
        if account.available <= Decimal(0):
            raise Forbidden(NOT_ENOUGH_CREDIT, error_id="insufficient-credit")
        return Admission(max_duration=None)


class CallbackService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        authenticator: Authenticator,
        callbacks: CallbackStore,
        guard: SecurityGuard,
        credit: CreditGate,
        shedder: LoadShedder,
    ) -> None:
        self._settings = settings
        self._db = db
        self._auth = authenticator
        self._credit = credit
        self._callbacks = callbacks
        self.guard = guard
        self._shedder = shedder
        self._queued_listeners: list[Callable[[Callback], None]] = [shedder.queued]

    def subscribe(self, listener: Callable[[Callback], None]) -> Callable[[], None]:
        """Call `listener` with each callback queued from now on; returns the unsubscribe."""
        self._queued_listeners.append(listener)
        return lambda: self._queued_listeners.remove(listener)

    @property
    def subscribers(self) -> int:
        return len(self._queued_listeners)

    async def request_callback(self, req: CallbackRequest) -> Callback:
        # On SQLite the checks and writes of one request share one transaction (`Database.unit`);
        # a refusal keeps what it wrote (the claimed nonce, counted failures, security events).
        self._shedder.check()  # first: an overloaded node does no work for what it refuses
        with self._db.unit(keep_on=(ApiError,)):
            callback, queued = await self._accept(req)
        if queued:  # after the commit, so the dispatcher finds the row
            self._callbacks.events.written()  # and the event streams their `callback.queued`
            for listener in list(self._queued_listeners):
                listener(callback)
        return callback

    async def _accept(self, req: CallbackRequest) -> tuple[Callback, bool]:
        """The callback for this request, and whether it was queued now (False: a duplicate)."""
        if not req.target:
            raise BadRequest("The destination number is missing.", error_id="missing-parameter")
        country = geoip.country_of(req.client_ip) if self._settings.numbers.geoip else None
        await self.guard.screen_client(req.client_ip, country)
        account = await self.guard.authenticate(self._auth, req.credentials, req.client_ip)
        if not account.enabled:
            raise Forbidden("This account is disabled.", error_id="account-disabled")
        await self.guard.screen_account(account, req.client_ip)
        region = account.region or country or self._settings.numbers.default_region
        destination = to_e164(req.target, region, what="destination number")
        callback = self._callback_number(req.callback or account.callback_number, region)
        await self.guard.check_numbers(account, destination, callback, req.client_ip)
        existing = await self.guard.duplicate_of(account, destination, callback)
        if existing is None:
            await self.guard.check_daily(account, req.client_ip)
            callback_id = new_callback_id()
            existing = await self.guard.hold_slot(account, callback_id, destination, callback, req.client_ip)
        if existing is not None:
            return await self._db.run(self._callbacks.get, existing), False
        try:
            return await self._admit(req, account, destination, callback, callback_id, country), True
        except BaseException:
            await self.guard.release(callback_id)
            raise

    async def _admit(
        self,
        req: CallbackRequest,
        account: Account,
        destination: str,
        callback: str,
        callback_id: str,
        country: str | None,
    ) -> Callback:
        status_url = self._status_url(req.status_url)
        admission = await self._credit.admit(account, destination, callback, callback_id)
        queued = await self._db.run(
            self._callbacks.create,
            id=callback_id,
            account_id=account.id,
            username=account.username,
            destination=destination,
            callback=callback,
            client_ip=req.client_ip,
            country=country,
            max_duration=admission.max_duration,
            status_url=status_url,
        )
        return queued

    def _status_url(self, url: str | None) -> str | None:
        """The request's status URL when the provider allows them (else it is ignored)."""
        hooks = self._settings.webhooks
        if not url or not hooks.allow_request_url:
            return None
        try:
            return check_webhook_url(url, allow_http=hooks.request_url_allow_http)
        except ValueError:
            allowed = "an http(s)" if hooks.request_url_allow_http else "an https"
            raise BadRequest(f"The status URL must be {allowed} URL.", error_id="bad-status-url") from None

    @staticmethod
    def _callback_number(raw: str | None, region: str) -> str:
        if not raw:
            raise BadRequest(
                "No callback number: set one in the app or on the account.",
                error_id="missing-callback-number",
            )
        return to_e164(raw, region, what="callback number")
