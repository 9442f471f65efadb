"""The composition root: builds every service from the settings, once, for the web app and the CLI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from webcallback.config import Settings
from webcallback.engines.base import CallOutcome
from webcallback.passwords import PasswordCipher, load_cipher
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

    def close(self) -> None:
        self.db.close()


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    db = Database(settings.database.url)
    if migrate:
        db.migrate()
    cipher = load_cipher(settings.secrets)
    authenticator = Authenticator(settings.auth, db, cipher)
    return Services(
        settings=settings,
        db=db,
        cipher=cipher,
        accounts=AccountStore(db),
        callbacks=CallbackStore(db),
        authenticator=authenticator,
        callback_service=CallbackService(settings, db, authenticator),
    )
