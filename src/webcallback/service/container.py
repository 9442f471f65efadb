"""The composition root: builds every service from the settings, once, for the web app and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from webcallback.billing.service import BillingService
from webcallback.config import ConfigError, Settings
from webcallback.domain import CallOutcome
from webcallback.passwords import PasswordCipher, load_cipher
from webcallback.security.digest_auth import DigestAuthenticator
from webcallback.security.guard import SecurityGuard
from webcallback.security.keys import keys_in_use
from webcallback.security.spend import ChargesSpendMeter
from webcallback.service.auth import Authenticator
from webcallback.service.callbacks import CallbackService, PositiveBalanceGate
from webcallback.service.events import EventBus
from webcallback.service.health import Health
from webcallback.service.metrics import Metrics
from webcallback.service.shedding import LoadShedder
from webcallback.store.accounts import AccountStore
from webcallback.store.callbacks import Callback, CallbackStore
from webcallback.store.db import Database
from webcallback.store.events import EventWriter, Routing


def check_key_file(settings: Settings, db: Database) -> None:
    """A missing key file is created only for a database without accounts: with accounts, a new
    key would open none of their passwords (and would stay behind, hiding the real problem)."""
    path = Path(settings.secrets.key_file)
    if settings.secrets.key is None and not path.exists() and keys_in_use(db):
        raise ConfigError(
            "secrets.key_file",
            f"{path.resolve()} does not exist, but the database has accounts whose passwords need "
            "it: restore the key file, or point secrets.key_file at it",
        )


def check_keys(settings: Settings, db: Database, cipher: PasswordCipher) -> None:
    """Every key id the accounts' passwords are under must be a configured key: with the wrong key
    file (a relative path followed from another directory, a lost file) every login would fail."""
    missing = sorted(keys_in_use(db) - set(cipher.key_ids))
    if missing:
        where = "secrets.key" if settings.secrets.key else f"secrets.key_file ({settings.secrets.key_file})"
        raise ConfigError(
            "secrets.key",
            f"stored account passwords are encrypted under key id(s) {', '.join(missing)}, which "
            f"{where} does not hold (it has {', '.join(cipher.key_ids)}): wrong or lost key file?",
        )


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
    # What `/metrics` shows; observed by the web middleware, the dispatcher and the store.
    metrics: Metrics
    # What `/readyz` checks: the database and the engine.
    health: Health
    # Admission control: refuses callbacks this node could not start within `calls.max_queue_wait`.
    shedder: LoadShedder
    # Wakes the event streams and the webhook deliverer when events are written.
    events: EventBus
    # Called by the dispatcher once per callback after its final state is stored (billing settles
    # here, webhooks fire here). Each hook must not raise; the dispatcher logs and goes on if it does.
    on_callback_finished: list[FinishedHook] = field(default_factory=list)
    # Rating, reservations and settlement; None when `billing.enabled` is off.
    billing: BillingService | None = None
    # Set by a second SIGINT/SIGTERM during the shutdown: the dispatcher stops draining and hangs up.
    stop_draining: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        self.db.close()


def build_services(settings: Settings, *, migrate: bool = True, prepare: bool = False) -> Services:
    """`migrate`: upgrade the schema to this version's (tests, benchmarks). `prepare` (what the
    CLI and `webcallback run` do instead): create the schema of an empty database, refuse one at
    another revision (`SchemaNotCurrent`), and refuse password keys that cannot open the stored
    passwords (`ConfigError` on `secrets.key`)."""
    db = Database(settings.database.url)
    metrics = Metrics(settings)
    db.observe = metrics.store_call
    if prepare:
        db.prepare()
    elif migrate:
        db.migrate()
    if prepare:
        check_key_file(settings, db)
    cipher = load_cipher(settings.secrets)
    if prepare:
        check_keys(settings, db, cipher)
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
    hooks = settings.webhooks
    routing = Routing(global_url=hooks.url, global_types=hooks.events, callback_urls=hooks.allow_request_url)
    writer = EventWriter(routing)
    callbacks = CallbackStore(db, writer)
    bus = EventBus(db, settings.events)
    writer.on_written.append(bus.written)
    writer.on_outbox.append(bus.outbox_written)
    shedder = LoadShedder(settings.calls)
    services = Services(
        settings=settings,
        db=db,
        cipher=cipher,
        accounts=AccountStore(db),
        callbacks=callbacks,
        authenticator=authenticator,
        callback_service=CallbackService(
            settings, db, authenticator, callbacks, guard, billing or PositiveBalanceGate(), shedder
        ),
        shedder=shedder,
        on_callback_finished=[billing.settle] if billing else [],
        billing=billing,
        metrics=metrics,
        health=Health(db, shedder),
        events=bus,
    )
    # The per-user concurrency slot is given back when the callback ends.
    services.on_callback_finished.append(guard.on_callback_finished)
    return services


# Something that runs for the life of the services (the engine, the lab, housekeeping), entered
# and exited by the web app's lifespan in order.
LifespanHook = Callable[[Services], contextlib.AbstractAsyncContextManager[None]]
