"""Accepting a web callback request: authenticate, normalise both numbers, check credit, queue.

The HTTP layer hands in a `CallbackRequest` (raw values, whatever names and format the app used);
this returns the queued `Callback` or raises an `ApiError`. The dispatcher is told through
`on_queued` so a callback starts within milliseconds instead of at the next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from webcallback import geoip
from webcallback.config import Settings
from webcallback.errors import NOT_ENOUGH_CREDIT, BadRequest, Forbidden
from webcallback.numbers import to_e164
from webcallback.service.auth import Authenticator, Credentials
from webcallback.store.accounts import Account
from webcallback.store.callbacks import Callback, CallbackStore, new_callback_id
from webcallback.store.db import Database


@dataclass(frozen=True)
class CallbackRequest:
    credentials: Credentials
    target: str | None
    callback: str | None
    client_ip: str


@dataclass(frozen=True)
class Admission:
    """What the credit gate allows: the longest call the account can pay for (None: unlimited)."""

    max_duration: float | None


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
        credit: CreditGate | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._auth = authenticator
        self._credit: CreditGate = credit or PositiveBalanceGate()
        self._callbacks = CallbackStore(db)
        self.on_queued: Callable[[Callback], None] = lambda _cb: None

    async def request_callback(self, req: CallbackRequest) -> Callback:
        if not req.target:
            raise BadRequest("The destination number is missing.", error_id="missing-parameter")
        account = await self._auth.authenticate(req.credentials)
        if not account.enabled:
            raise Forbidden("This account is disabled.", error_id="account-disabled")
        country = geoip.country_of(req.client_ip) if self._settings.numbers.geoip else None
        region = account.region or country or self._settings.numbers.default_region
        destination = to_e164(req.target, region, what="destination number")
        callback = self._callback_number(req.callback or account.callback_number, region)
        callback_id = new_callback_id()
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
        )
        self.on_queued(queued)
        return queued

    @staticmethod
    def _callback_number(raw: str | None, region: str) -> str:
        if not raw:
            raise BadRequest(
                "No callback number: set one in the app or on the account.",
                error_id="missing-callback-number",
            )
        return to_e164(raw, region, what="callback number")
