"""The security tables, added to the service's one `metadata` (migration `0004_security`).

Everything that several nodes must agree on lives here rather than in memory: rate and failure
counters, lockouts, Digest nonces, the per-account callback slots, registered callback numbers,
and the security events log.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, String, Table

from webcallback.store.schema import metadata

# Fixed-window counters (`key` names what is counted, e.g. `rate:ip:203.0.113.9`); the limiter reads
# the current and the previous window to approximate a sliding one.
security_counters = Table(
    "security_counters",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
)

security_lockouts = Table(
    "security_lockouts",
    metadata,
    Column("key", String(200), primary_key=True),  # `user:NAME` or `ip:ADDRESS`
    Column("until", DateTime(timezone=True), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Digest nonces that have been used, with the highest nonce-count seen: a request must carry a
# higher `nc` than any before it (a conditional UPDATE decides, so two nodes cannot both accept).
digest_nonces = Table(
    "digest_nonces",
    metadata,
    Column("nonce", String(128), primary_key=True),
    Column("last_nc", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# One row per callback in progress; the primary key (account, slot) with slot < the limit is what
# makes the per-user concurrency limit atomic across nodes.
callback_slots = Table(
    "callback_slots",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("callback_id", String(32), nullable=False, unique=True),
    Column("destination", String(32), nullable=False),
    Column("callback", String(32), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
)

registered_numbers = Table(
    "registered_numbers",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("number", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

security_events = Table(
    "security_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("username", String(64), index=True),
    Column("client_ip", String(64), index=True),
    Column("reason", String(64), nullable=False),
    Column("detail", String(255)),
)
