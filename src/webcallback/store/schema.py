"""Tables, as SQLAlchemy Core. One `metadata` for the whole service; other modules add their tables
to it (telephony, billing, security) and a migration per change keeps databases in step.

Money is `Numeric(18, 6)` in the account's currency; times are timezone-aware UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

metadata = MetaData()

MONEY = Numeric(18, 6)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    # AES-256-GCM(nonce || ciphertext) of the password; the salted-hash login needs the plaintext.
    Column("password_enc", LargeBinary, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("callback_number", String(32)),
    Column("region", String(2)),
    Column("balance", MONEY, nullable=False, default=0),
    Column("reserved", MONEY, nullable=False, default=0),
    Column("currency", String(3), nullable=False, default="USD"),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Rate plan (billing, migration 0003); NULL: `billing.default_plan`.
    Column("plan", String(64)),
)

used_nonces = Table(
    "used_nonces",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="SET NULL"), index=True),
    Column("username", String(64), nullable=False),
    Column("destination", String(32), nullable=False),
    Column("callback", String(32), nullable=False),
    Column("client_ip", String(64)),
    Column("country", String(2)),
    Column("state", String(16), nullable=False, index=True),
    Column("reason", String(255)),
    Column("node", String(64)),
    Column("max_duration", Float),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    # While bridged, the dispatcher notes every `calls.checkpoint_interval` that the call is still
    # up: a crash is then charged for the talk up to here, not 0 (migration 0006).
    Column("talked_until", DateTime(timezone=True)),
    # A status URL the app's request named, for this callback's events (`[webhooks]
    # allow_request_url`; migration 0007).
    Column("status_url", Text),
    # The daily cap and duplicate suppression read an account's recent callbacks (migration 0005).
    Index("ix_callbacks_account_created", "account_id", "created_at"),
)
