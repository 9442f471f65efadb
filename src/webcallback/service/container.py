"""The composition root: builds every service from the settings, once, for the web app and the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from webcallback.billing.service import BillingService
from webcallback.config import Settings
from webcallback.domain import CallOutcome
from webcallback.passwords import PasswordCipher, load_cipher
from webcallback.security.digest_auth import DigestAuthenticator
from webcallback.security.guard import SecurityGuard
from webcallback.security.spend import ChargesSpendMeter
from webcallback.service.auth import Authenticator
from webcallback.service.callbacks import CallbackService
from webcallback.store.accounts import AccountStore
from webcallback.store.callbacks import Callback, CallbackStore
from webcallback.store.db import Database

FinishedHook = Callable[[Callback, CallOutcome], Awaitable[None]]


@dataclass
class Services:
    settings: Settings
    db: Database
    cipher: PasswordCipher
    accounts: AccountStore
    callbacks: CallbackStore
    authenticator: Authenticator
    callback_service: CallbackService
    # Called by the dispatcher once per callback after its final state is stored (billing settles
    # here, webhooks fire here). Each hook must not raise; the dispatcher logs and goes on if it does.
    on_callback_finished: list[FinishedHook] = field(default_factory=list)
    # Rating, reservations and settlement; None when `billing.enabled` is off.
    billing: BillingService | None = None

    def close(self) -> None:
        self.db.close()


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    db = Database(settings.database.url)
    if migrate:
        db.migrate()
    cipher = load_cipher(settings.secrets)
    digest = settings.security.digest
    digest_auth = (
        DigestAuthenticator(digest, db, cipher.derived_keys(b"webcallback digest nonce"))
        if digest.enabled
        else None
    )
    authenticator = Authenticator(settings.auth, db, cipher, digest_auth)
    billing = BillingService(settings, db) if settings.billing.enabled else None
    # The daily spend cap reads billing's charges; without billing there is nothing to cap.
    guard = SecurityGuard(settings, db, spend_meter=ChargesSpendMeter(db) if billing else None)
    services = Services(
        settings=settings,
        db=db,
        cipher=cipher,
        accounts=AccountStore(db),
        callbacks=CallbackStore(db),
        authenticator=authenticator,
        callback_service=CallbackService(settings, db, authenticator, credit=billing, guard=guard),
        on_callback_finished=[billing.settle] if billing else [],
        billing=billing,
    )
    # The per-user concurrency slot is given back when the callback ends.
    services.on_callback_finished.append(guard.on_callback_finished)
    return services


# Something that runs for the life of the services (the engine, the lab, housekeeping), entered
# and exited by the web app's lifespan in order.
LifespanHook = Callable[[Services], contextlib.AbstractAsyncContextManager[None]]
