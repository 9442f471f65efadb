"""The composition root: builds every service from the settings, once, for the web app and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from webcallback.config import Settings
from webcallback.passwords import PasswordCipher, load_cipher
from webcallback.service.auth import Authenticator
from webcallback.service.callbacks import CallbackService
from webcallback.store.accounts import AccountStore
from webcallback.store.callbacks import CallbackStore
from webcallback.store.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    cipher: PasswordCipher
    accounts: AccountStore
    callbacks: CallbackStore
    authenticator: Authenticator
    callback_service: CallbackService

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
