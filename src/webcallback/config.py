"""Typed settings, built once at start-up and passed into constructors.

Precedence, lowest first: built-in defaults; the TOML file (`--config FILE`, else
`webcallback.toml` in the working directory if present); environment variables
`WEBCALLBACK_<SECTION>__<KEY>` (nested sections add more `__`, e.g. `WEBCALLBACK_ENGINE__SIP__TRUNK`).
Every section is a frozen dataclass whose fields carry their documentation in `metadata["doc"]`;
`docs/configuration.md` is written from the same fields. An unknown key or a bad value raises
`ConfigError` naming the key; the CLI turns that into exit status 2. Nothing in `core/` reads this.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "WEBCALLBACK_"
DEFAULT_CONFIG_FILE = "webcallback.toml"


class ConfigError(Exception):
    """A configuration key is unknown or its value is invalid. `key` is the dotted name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config {key}: {problem}")
        self.key = key


class Secret:
    """A string that never shows itself in repr, str, logs or `config show`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def doc(text: str, default: Any = dataclasses.MISSING, *, choices: tuple[str, ...] = (), **kw: Any) -> Any:
    """A dataclass field with its documentation (and allowed values) attached."""
    meta = {"doc": text, "choices": choices}
    if default is dataclasses.MISSING:
        return field(metadata=meta, **kw)
    if isinstance(default, list | dict | set):
        raise TypeError("use default_factory for mutable defaults")
    return field(default=default, metadata=meta, **kw)


@dataclass(frozen=True)
class ServerSettings:
    listen: str = doc(
        "Address and port the HTTP server binds, `host:port`. Port 0: one the kernel picks, "
        "reported by `webcallback run --ready-file`.",
        "127.0.0.1:8080",
    )
    tls_cert: str | None = doc("PEM certificate chain; with `tls_key`, HTTPS is served directly.", None)
    tls_key: str | None = doc("PEM private key for `tls_cert`.", None)
    trusted_proxies: tuple[str, ...] = doc(
        "Addresses or networks (CIDR) whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.", ()
    )
    public_url: str | None = doc(
        "The URL the apps reach this service at (e.g. `https://cb.example.com`); used by "
        "`provision`. Default: derived from `listen` and TLS.",
        None,
    )
    workers: int = doc(
        "HTTP worker processes. With PostgreSQL, one per core. With SQLite only one process writes "
        "at a time, so a second worker adds little (BENCHMARKS.md: 1,438 vs 1,379 requests/s).",
        1,
    )
    header_timeout: float = doc(
        "Seconds a client has, from connecting or from its first byte of a following request, to "
        "send the whole request line and headers; then the connection is closed (slowloris).",
        10.0,
    )
    keepalive_timeout: float = doc(
        "Seconds an idle keep-alive connection is kept open after a response.", 5.0
    )
    max_header_bytes: int = doc(
        "Largest request line plus headers, in bytes; a larger request gets 431.", 16384
    )
    max_headers: int = doc("Most header fields in one request; more gets 431.", 100)
    max_connections: int = doc(
        "Open connections (and requests in flight) per process beyond which new requests get 503.",
        1000,
    )


@dataclass(frozen=True)
class NodeSettings:
    """Who this process is among the nodes sharing a database (crash recovery keys on it)."""

    id: str | None = doc(
        "This node's name, stored with the callbacks it runs; at most 64 characters, unique among "
        "the nodes sharing the database and stable across restarts. Unset: the host name and a "
        "random suffix kept in `state_dir` (`node-id`).",
        None,
    )
    state_dir: str = doc(
        "Directory for this node's own state: the generated node id, the phone lab's logs "
        "(relative to the config file's directory).",
        "var",
    )


LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LogSettings:
    """What `webcallback run` (and each SIP worker process) writes to stderr: one format for every
    component — our loggers, uvicorn, Alembic, sippy (docs/operations.md, *Logs*)."""

    format: str = doc(
        "`text`: one line per record for people (`time level logger: message key=value`); `json`: "
        "one JSON object per line (`time`, `level`, `logger`, `process`, `message`, and "
        "`callback_id`, `error_id`, the access fields, `exc` when there are).",
        "text",
        choices=("text", "json"),
    )
    level: str = doc(
        "Least severe level written: `debug` adds each SIP message (`webcallback.engines.sip.trace`) "
        "and the call-control steps.",
        "info",
        choices=LOG_LEVELS,
    )
    levels: tuple[str, ...] = doc(
        "Levels for single loggers, as `logger=level`: e.g. `webcallback.engines.sip.trace=debug` "
        "writes each SIP message while the rest stays at `level`.",
        (),
    )
    access: bool = doc(
        "One line per HTTP request (`webcallback.access`: method, path, route, status, duration, "
        "error id); uvicorn's own access log is off either way.",
        True,
    )

    def __post_init__(self) -> None:
        self.logger_levels()  # refuses a malformed entry at start-up, naming the key

    def logger_levels(self) -> list[tuple[str, str]]:
        """`levels` as (logger, level) pairs."""
        pairs: list[tuple[str, str]] = []
        for entry in self.levels:
            name, sep, level = (part.strip() for part in entry.partition("="))
            if not sep or not name or level.lower() not in LOG_LEVELS:
                raise ConfigError("log.levels", f"{entry!r} is not `logger=level` ({', '.join(LOG_LEVELS)})")
            pairs.append((name, level.lower()))
        return pairs


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = doc(
        "SQLAlchemy URL: `sqlite:///path` (a relative path is relative to the config file's "
        "directory) or `postgresql://user:pass@host/db` for several nodes.",
        "sqlite:///var/webcallback.db",
    )


@dataclass(frozen=True)
class ParamNames:
    """Which request parameters carry what; the provider chooses the names in the app's template."""

    target: tuple[str, ...] = doc("Names of the destination number parameter.", ("targetNumber", "to"))
    callback: tuple[str, ...] = doc("Names of the callback number parameter.", ("callbackNumber", "callback"))
    user: tuple[str, ...] = doc("Names of the username parameter.", ("username", "u", "user"))
    password: tuple[str, ...] = doc("Names of the plain password parameter.", ("password", "p"))
    nonce: tuple[str, ...] = doc("Names of the nonce parameter (salted-hash login).", ("nonce",))
    hash: tuple[str, ...] = doc("Names of the salted hash parameter.", ("hash", "sha1"))


@dataclass(frozen=True)
class ApiSettings:
    path: str = doc("Path of the web callback endpoint; with and without a trailing slash.", "/webcallback")
    response_format: str = doc(
        "Body format of responses: `auto` follows the request body's format, else the Accept header, "
        "else JSON.",
        "auto",
        choices=("auto", "json", "xml", "form"),
    )
    success_body: str = doc(
        "What a 2xx carries: `id` (the callback id, in the response format) or `empty`.",
        "id",
        choices=("id", "empty"),
    )
    max_body_bytes: int = doc("Largest request body accepted; larger gets 413.", 16384)
    token: Secret | None = doc(
        "Bearer token for the status API (`/api/v1/...`) and `/metrics`; unset disables the status API "
        "and leaves `/metrics` open.", None
    )
    params: ParamNames = doc("Parameter names.", default_factory=ParamNames)


@dataclass(frozen=True)
class AuthSettings:
    allow_password_over_http: bool = doc(
        "Accept plain passwords over plain HTTP. For labs only: passwords then cross the network in clear.",
        False,
    )
    hash_recipe: str = doc(
        "How the app's template builds the salted hash: the concatenation order, `nonce+password` "
        "(`%sha1(%nonce%%account[password]%)%`) or `password+nonce`.",
        "nonce+password",
        choices=("nonce+password", "password+nonce"),
    )
    hash_encoding: str = doc(
        "Encoding of the SHA-1 digest: `hex` (40 digits, any case) or `base64`.",
        "hex",
        choices=("hex", "base64"),
    )
    nonce_window: int = doc(
        "Seconds a used nonce is remembered (and refused again); older nonces are forgotten.", 604800
    )
    min_nonce_length: int = doc("Shortest nonce accepted.", 8)


@dataclass(frozen=True)
class NumberSettings:
    default_region: str = doc(
        "ISO country used for national-format numbers when neither the account nor GeoIP gives one.",
        "US",
    )
    geoip: bool = doc("Look the client's country up from its IP address (bundled database).", True)


@dataclass(frozen=True)
class SecretSettings:
    key: Secret | None = doc(
        "Base64 of the 32-byte key that encrypts account passwords at rest. Unset: read from "
        "`key_file`, creating it on first start.",
        None,
    )
    key_file: str = doc(
        "File holding the key when `key` is unset (created 0600; relative to the config file's directory).",
        "var/secret.key",
    )


@dataclass(frozen=True)
class TrunkSettings:
    """One `[[engine.sip.trunks]]` entry (docs/engines.md, "Several trunks")."""

    uri: str = doc("SIP URI of the trunk, `sip:host[:port]`. UDP over IPv4 only (refused otherwise).")
    name: str = doc("Name shown by `webcallback trunks` and in the logs; default: the URI's host:port.", "")
    username: str | None = doc("Digest username for this trunk.", None)
    password: Secret | None = doc("Digest password for this trunk.", None)
    priority: int = doc("Lower is tried first (RFC 3263 style); trunks of one priority share by weight.", 10)
    weight: int = doc("Share of calls among trunks of the same priority (weighted random).", 1)
    max_channels: int = doc("Legs this trunk carries at once (0: no limit); a full trunk is skipped.", 0)
    max_cps: float = doc("INVITEs per second to this trunk (0: no limit); paced, never refused.", 0.0)
    number_format: str = doc(
        "Request-URI user: `e164` (+15551230001), `e164-digits` (15551230001), `national` "
        "(5551230001 for `country_code` 1; other countries keep the country code with `00`).",
        "e164",
        choices=("e164", "e164-digits", "national"),
    )
    country_code: str = doc("The trunk's country for `national` (digits, e.g. `1`, `44`).", "")
    national_prefix: str = doc("Trunk prefix put before a national number (e.g. `0` in the UK).", "")
    strip_digits: int = doc("Leading digits removed after formatting (before the tech prefix).", 0)
    tech_prefix: str = doc("Digits put before the number (a carrier's routing prefix).", "")
    caller_id: str = doc(
        "How the caller ID is sent: `from` (in From only) or `pai` (also P-Asserted-Identity, "
        "RFC 3325; with `privacy` set, From becomes anonymous and `Privacy: id` is added).",
        "from",
        choices=("from", "pai"),
    )
    privacy: bool = doc("With `caller_id = \"pai\"`: hide the caller ID (`Privacy: id`).", False)
    prefixes: tuple[str, ...] = doc("E.164 prefixes this trunk carries (`+1`, `+4420`); empty: all.", ())
    options_interval: float = doc(
        "Seconds between OPTIONS keep-alives (0: none). A trunk that does not answer is down and "
        "skipped until it answers again.",
        0.0,
    )


@dataclass(frozen=True)
class SipSettings:
    listen: str = doc(
        "Address and port of the embedded SIP engine (UDP). Port 0: one the kernel picks (with "
        "`processes` = 1), reported by `webcallback run --ready-file`.",
        "127.0.0.1:5070",
    )
    trunk: str | None = doc(
        "SIP URI both legs are sent to, e.g. `sip:trunk.example.net:5060`; the E.164 number becomes "
        "the Request-URI user. Unset: the loopback phone lab is used.",
        None,
    )
    trunks: tuple[TrunkSettings, ...] = doc(
        "Several trunks, as `[[engine.sip.trunks]]` tables, with failover (docs/engines.md). When "
        "set, `trunk`, `username` and `password` must not be.",
        (),
    )
    trunk_silence: float = doc(
        "Seconds a trunk may stay silent (not even 100 Trying) before the leg is tried on the next "
        "trunk, when there is one (0: wait for Timer B, 32 s).",
        2.0,
    )
    username: str | None = doc("Digest username for the trunk (401/407 challenges).", None)
    password: Secret | None = doc("Digest password for the trunk.", None)
    from_domain: str | None = doc("Host part of the From header; default: the trunk's host.", None)
    flow: str = doc("RFC 3725 flow: `III` (recommended for humans) or `I`.", "III", choices=("III", "I"))
    udp_workers: int = doc(
        "UDP receiver threads, and as many sender threads, of the SIP stack (sippy's own default is 3; "
        "under the GIL one of each costs less CPU). Process-wide: the first engine started sets it.",
        1,
    )
    linger: float = doc(
        "Seconds a finished call's SIP state is kept to absorb late retransmissions (sippy's default, "
        "32, is safe on any network; a few seconds keeps memory down at high call rates on a LAN). "
        "Process-wide: the first engine started sets it.",
        32.0,
    )
    processes: int = doc(
        "SIP worker processes. 1: the engine runs inside the service's process. N > 1: N worker "
        "processes, each a whole SIP engine on its own UDP port (`listen`'s port, port + 1, ...), "
        "callbacks shared among them by id; sippy's reactor does about one core of work per "
        "process, so this is how a node uses more than one core. 0: one per CPU core.",
        1,
    )
    session_expires: int = doc(
        "Session timer (RFC 4028) asked for on both legs, in seconds: our INVITEs carry "
        "`Session-Expires` with us as the refresher, and each leg is refreshed (UPDATE if the far "
        "end allows it, else re-INVITE) at half the interval agreed. A refresh answered 408/481 "
        "or not at all, or a far-end refresher that stops refreshing, ends the callback with "
        "reason `session-expired`. 0 turns session timers off.",
        1800,
    )
    session_min_se: int = doc(
        "`Min-SE` we send and the shortest session interval we accept from a far end (a shorter "
        "one is answered 422). RFC 4028 requires at least 90; smaller values are for tests only "
        "(to see refreshes within seconds) and are logged as a warning.",
        90,
    )
    worker_full_gc_every: float = doc(
        "Seconds between full garbage collections in a SIP worker process (`processes` > 1). A "
        "worker collects its young objects every 0.25 s; a full pass walks every live call and "
        "stops that worker's SIP traffic meanwhile (docs/engines.md gives the measured pause).",
        600.0,
    )


@dataclass(frozen=True)
class EngineSettings:
    kind: str = doc(
        "Telephony engine: `sip` (embedded) or `none` (accept only).", "sip", choices=("sip", "none")
    )
    sip: SipSettings = doc("Embedded SIP engine.", default_factory=SipSettings)


@dataclass(frozen=True)
class CallSettings:
    leg_order: str = doc(
        "Which leg is dialled first.",
        "destination-first",
        choices=("destination-first", "callback-first", "parallel"),
    )
    ring_timeout: float = doc("Seconds each leg may ring before it is cancelled.", 30.0)
    progress_timeout: float = doc(
        "Seconds a leg's INVITE may go without a 18x or 2xx (nothing back, or only 100 Trying) "
        "before it is given up as `<leg>-no-progress` (or `-no-response`); 0: only `ring_timeout`.",
        0.0,
    )
    max_duration: float = doc("Longest bridged call in seconds (credit may cut it shorter).", 3600.0)
    caller_id_to_destination: str = doc(
        "Caller ID the destination sees; `{callback}`, `{destination}`, `{username}` are replaced.",
        "{callback}",
    )
    caller_id_to_callback: str = doc("Caller ID the user's phone sees.", "{destination}")
    concurrency: int = doc(
        "Callbacks this node runs at once (queued ones wait). It caps the rate a node sustains at "
        "about concurrency / (call length + setup): 2,000 is ~33/s with one-minute calls. A "
        "connected call holds about 35 KB; one SIP process ran 4,000 at once (BENCHMARKS.md).",
        2000,
    )
    shutdown: str = doc(
        "On shutdown: `drain` lets calls in progress finish, `hangup` ends them.",
        "drain",
        choices=("drain", "hangup"),
    )
    drain_timeout: float = doc("Longest wait for calls to finish when draining.", 3600.0)
    max_queue_wait: float = doc(
        "Seconds a new callback may be expected to wait before this node starts dialling it. A "
        "request that would wait longer (every slot of `concurrency` busy and the backlog more "
        "than this node starts in that time) is refused at once with 503 and Retry-After, and no "
        "call is placed for it; 0 turns admission control off.",
        5.0,
    )
    checkpoint_interval: float = doc(
        "Seconds between notes that bridged calls are still up (one UPDATE for all of them). A "
        "call interrupted by a crash is charged for its talk up to the last note, or up to the "
        "far end's answer to the BYE a restart sends (docs/operations.md); 0 turns notes off.",
        15.0,
    )


@dataclass(frozen=True)
class LockoutSettings:
    """Failed authentications before a user or an address is locked out (credential stuffing)."""

    max_failures_per_user: int = doc(
        "Failed logins for one username within `window` before that username is locked; 0 disables.", 5
    )
    max_failures_per_ip: int = doc(
        "Failed logins from one client address within `window` before that address is locked; 0 disables.",
        20,
    )
    window: int = doc("Seconds over which failures are counted (sliding).", 900)
    duration: int = doc("Seconds a lockout lasts (`webcallback security unlock` ends it early).", 900)


@dataclass(frozen=True)
class LimitSettings:
    """Request rates, concurrency and daily caps. 0 disables a limit."""

    requests_per_minute_per_user: int = doc("Authenticated requests per username per minute.", 10)
    requests_per_minute_per_ip: int = doc(
        "Requests per client address per minute (all, even unauthenticated).", 120
    )
    concurrent_callbacks_per_user: int = doc(
        "Callbacks one account may have in progress (queued to final state) at once.", 1
    )
    callbacks_per_day: int = doc("Callbacks one account may place in 24 hours.", 100)
    spend_per_day: float = doc(
        "Money one account may spend in 24 hours, in its currency (needs billing's spend meter); 0: no cap.",
        0.0,
    )
    duplicate_window: int = doc(
        "Seconds within which the same account asking for the same two numbers gets the existing "
        "callback's id instead of a new call; 0 disables.",
        30,
    )


@dataclass(frozen=True)
class NumberRules:
    """Allow/deny rules for one leg. Prefixes are E.164 with `+`; countries ISO 3166 alpha-2.
    A deny rule beats an allow rule; a non-empty allow list admits only what it lists."""

    allow_prefixes: tuple[str, ...] = doc("Only numbers starting with one of these (empty: any).", ())
    deny_prefixes: tuple[str, ...] = doc("Numbers starting with any of these are refused.", ())
    allow_countries: tuple[str, ...] = doc("Only numbers of these countries (empty: any).", ())
    deny_countries: tuple[str, ...] = doc("Numbers of these countries are refused.", ())


@dataclass(frozen=True)
class PolicySettings:
    """Toll-fraud policy: which numbers may be called, checked on both legs after normalisation."""

    refused_types: tuple[str, ...] = doc(
        "libphonenumber number types refused on both legs: PREMIUM_RATE, SHARED_COST, UAN, "
        "PERSONAL_NUMBER, UNKNOWN, TOLL_FREE, VOIP, PAGER, VOICEMAIL, MOBILE, FIXED_LINE, "
        "FIXED_LINE_OR_MOBILE. UNKNOWN also covers numbers that are possible but not valid.",
        ("PREMIUM_RATE", "SHARED_COST", "UAN", "PERSONAL_NUMBER", "UNKNOWN"),
    )
    destination: NumberRules = doc("Rules for the destination number.", default_factory=NumberRules)
    callback: NumberRules = doc("Rules for the callback number.", default_factory=NumberRules)
    callback_must_be_registered: bool = doc(
        "The callback number must be one of the account's registered numbers "
        "(`webcallback security numbers add`) or its configured callback number.",
        False,
    )
    deny_client_countries: tuple[str, ...] = doc(
        "Refuse requests whose client address GeoIP-locates to one of these countries.", ()
    )


@dataclass(frozen=True)
class DigestSettings:
    enabled: bool = doc(
        "Offer HTTP Digest (RFC 7616) on the callback endpoint; a request without credentials gets a "
        "401 challenge.",
        True,
    )
    realm: str = doc("Digest realm shown in the challenge (part of what the client hashes).", "webcallback")
    algorithms: tuple[str, ...] = doc(
        "Challenges offered, in order of preference: SHA-256 and/or MD5.", ("SHA-256", "MD5")
    )
    nonce_lifetime: int = doc("Seconds a server nonce is accepted; older ones get `stale=true`.", 300)


@dataclass(frozen=True)
class SecuritySettings:
    lockout: LockoutSettings = doc("Lockout after failed logins.", default_factory=LockoutSettings)
    limits: LimitSettings = doc("Rate, concurrency and daily limits.", default_factory=LimitSettings)
    policy: PolicySettings = doc("Toll-fraud number policy.", default_factory=PolicySettings)
    digest: DigestSettings = doc("HTTP Digest authentication.", default_factory=DigestSettings)
    tls_min_version: str = doc(
        "Oldest TLS version accepted when HTTPS is served directly.", "1.2", choices=("1.2", "1.3")
    )
    log_events: bool = doc(
        "Store security events (failed logins, lockouts, refusals) in the database as well as logging them.",
        True,
    )


@dataclass(frozen=True)
class BillingSettings:
    """Rating and credit (docs/billing.md). Fail closed: with billing on, a number without a rate
    in the account's plan is refused."""

    enabled: bool = doc(
        "Rate both legs and reserve credit before dialling. Off: only accounts with no credit left "
        "are refused, and calls are not charged.",
        True,
    )
    default_plan: str = doc(
        "Rate plan of accounts that have none, and of unauthenticated rate checks.", "default"
    )
    default_currency: str = doc(
        "Currency of a rate plan created by `rates import` without `--currency`.", "USD"
    )
    bill_callback_leg: bool = doc("Charge the callback leg (the user's phone) at its own rate, too.", True)
    leg_duration: str = doc(
        "What each leg is charged for: `bridged` (both legs for the time they were connected) or "
        "`talk` (each leg from its own answer to its end, waiting included).",
        "bridged",
        choices=("bridged", "talk"),
    )
    min_duration: float = doc(
        "Seconds of both legs (fees included) the account must afford before a callback is accepted.", 60.0
    )
    max_reservation: float = doc(
        "Longest call, in seconds, credit is reserved for; it caps the callback's maximum duration.", 3600.0
    )
    not_enough_credit_message: str = doc(
        "Message of the 403 when the account cannot afford `min_duration`.",
        "Not enough credit for this call.",
    )
    no_rate_message: str = doc(
        "Message of the 403 when a number has no rate; `{number}` is replaced.",
        "Calls to {number} are not available on your plan.",
    )
    deck_refresh: float = doc(
        "Seconds a node trusts its in-memory copy of a rate plan before checking whether it was re-imported.",
        5.0,
    )
    balance_path: str = doc("Path of the balance checker (`genericBalanceCheckUrl`).", "/balance")
    rate_path: str = doc("Path of the rate checker (`genericRateCheckUrl`).", "/rate")
    rate_auth: str = doc(
        "Rate checks: `optional` (credentials, when sent, select the account's plan; else the default "
        "plan) or `required`.",
        "optional",
        choices=("optional", "required"),
    )
    no_rate_string: str = doc("`callRateString` of the rate checker for a number without a rate.", "No rate")
    message_rate_string: str = doc(
        "`messageRateString` of the rate checker (this service sends no messages).", ""
    )


EVENT_TYPES = (
    "callback.queued",
    "callback.dialing",
    "callback.bridged",
    "callback.completed",
    "callback.failed",
    "leg.trying",
    "leg.ringing",
    "leg.answered",
    "leg.bridged",
    "leg.ended",
)


@dataclass(frozen=True)
class EventSettings:
    retention_days: float = doc(
        "Days events (and their webhook deliveries) are kept; housekeeping purges older ones. "
        "0 keeps them for ever.",
        7.0,
    )
    heartbeat: float = doc(
        "Seconds between heartbeat comments on an idle `/api/v1/events` stream (proxies close "
        "silent connections).",
        15.0,
    )
    max_streams: int = doc(
        "Event streams this node serves at once; one more is refused with 503.", 100
    )
    poll_interval: float = doc(
        "Seconds between this node's single look for events written by other processes (other "
        "nodes, the CLI) while streams are open; its own writes wake the streams at once.",
        2.0,
    )


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None = doc(
        "URL every selected event is POSTed to (JSON); unset: no global webhook (accounts may "
        "still have their own, `webcallback account webhook`).",
        None,
    )
    secret: Secret | None = doc(
        "Key of the HMAC-SHA256 signature (`Webcallback-Signature`) of the global webhook's "
        "deliveries, and of per-callback status URLs' ones; unset: deliveries are not signed.",
        None,
    )
    events: tuple[str, ...] = doc(
        "Event types delivered to the global webhook; empty: all of them. Types: "
        + ", ".join(f"`{t}`" for t in EVENT_TYPES)
        + ".",
        (),
    )
    timeout: float = doc("Seconds one delivery may take before it counts as failed.", 10.0)
    max_attempts: int = doc(
        "Attempts per delivery before it is given up (`dead`; `webcallback webhooks retry` "
        "re-queues it).",
        10,
    )
    backoff_initial: float = doc(
        "Seconds before the second attempt; each later wait doubles, up to `backoff_max`.", 2.0
    )
    backoff_max: float = doc("Longest wait between two attempts, in seconds.", 600.0)
    concurrency: int = doc("Deliveries in flight at once, per node.", 8)
    allow_request_url: bool = doc(
        "Let the app's request name a per-callback status URL (parameter `request_url_param`), "
        "which then gets that callback's events, signed with `secret`.",
        False,
    )
    request_url_param: str = doc("Name of the request's per-callback status URL parameter.", "statusUrl")
    request_url_allow_http: bool = doc(
        "Accept `http://` per-callback status URLs, not only `https://` (labs only).", False
    )


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    node: NodeSettings = field(default_factory=NodeSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    numbers: NumberSettings = field(default_factory=NumberSettings)
    secrets: SecretSettings = field(default_factory=SecretSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    calls: CallSettings = field(default_factory=CallSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    events: EventSettings = field(default_factory=EventSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    log: LogSettings = field(default_factory=LogSettings)


# ---- loading -------------------------------------------------------------------------------


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the file, then the environment. Raises ConfigError."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    file = Path(path) if path is not None else Path(DEFAULT_CONFIG_FILE)
    if path is not None or file.exists():
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("--config", f"file {file} not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("--config", f"{file} is not valid TOML: {exc}") from None
    _merge_environment(raw, environ)
    settings: Settings = _build(Settings, raw, "")
    if file.is_file():  # not for `--config /dev/null`, which is "no file"
        settings = resolve_paths(settings, file.resolve().parent)
    return settings


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative file settings made absolute against `base`, the config file's directory, so that a
    command run from another directory uses the same database and key as the service. (Without a
    file they stay relative, i.e. to the working directory.)"""

    def absolute(text: str) -> str:
        return text if Path(text).is_absolute() else str(base / text)

    def absolute_opt(text: str | None) -> str | None:
        return None if text is None else absolute(text)

    url = settings.database.url
    head, sep, rest = url.partition(":///")
    if sep and head.split("+")[0] == "sqlite" and rest and not rest.startswith(("/", ":memory:")):
        path, query_sep, query = rest.partition("?")
        url = f"{head}:///{absolute(path)}{query_sep}{query}"
    return dataclasses.replace(
        settings,
        database=dataclasses.replace(settings.database, url=url),
        secrets=dataclasses.replace(settings.secrets, key_file=absolute(settings.secrets.key_file)),
        node=dataclasses.replace(settings.node, state_dir=absolute(settings.node.state_dir)),
        server=dataclasses.replace(
            settings.server,
            tls_cert=absolute_opt(settings.server.tls_cert),
            tls_key=absolute_opt(settings.server.tls_key),
        ),
    )


def _merge_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(parts), "is not a section")
            node = child
        node[parts[-1]] = _EnvValue(value)


class _EnvValue(str):
    """A value from the environment: a string that still needs converting to the field's type."""


def _build(cls: type[Any], raw: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix.rstrip(".") or "(root)", "must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(prefix + unknown[0], "unknown key")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = prefix + name
        values[name] = _convert(hints[name], value, key, fields[name].metadata.get("choices", ()))
    return cls(**values)


def _convert(tp: Any, value: Any, key: str, choices: tuple[str, ...]) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, key + ".")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in args if a is not type(None))
        if isinstance(value, _EnvValue) and value == "":
            return None
        return _convert(inner, value, key, choices)
    if isinstance(value, _EnvValue):
        value = _parse_env(tp, str(value), key)
    if tp is Secret:
        if not isinstance(value, str):
            raise ConfigError(key, "must be a string")
        return Secret(value)
    if origin is tuple and args and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
        if not isinstance(value, list):
            raise ConfigError(key, "must be a list of tables ([[...]])")
        return tuple(_build(args[0], item, f"{key}[{i}].") for i, item in enumerate(value))
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(key, "must be a list of non-empty strings")
        return tuple(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, "must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, "must be a whole number")
        if value < 0:
            raise ConfigError(key, "must not be negative")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, "must be a number")
        if value < 0:
            raise ConfigError(key, "must not be negative")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, "must be a string")
        if choices and value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)} (got {value!r})")
        return value
    raise ConfigError(key, f"unsupported type {tp!r}")  # pragma: no cover - a programming error


def _parse_env(tp: Any, text: str, key: str) -> Any:
    if tp is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, f"must be true or false (got {text!r})")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(key, f"must be a whole number (got {text!r})") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(key, f"must be a number (got {text!r})") from None
    if typing.get_origin(tp) is tuple and text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(key, "must be a JSON list or a comma-separated list") from None
    return text


# ---- showing -------------------------------------------------------------------------------


def settings_as_dict(settings: Any) -> dict[str, Any]:
    """The effective settings as plain data, secrets masked; for `config show`."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = settings_as_dict(value)
        elif isinstance(value, Secret):
            out[f.name] = "**********" if value else ""
        elif isinstance(value, tuple):
            out[f.name] = [settings_as_dict(v) if dataclasses.is_dataclass(v) else v for v in value]
        elif isinstance(value, str):
            out[f.name] = mask_url_password(value)
        else:
            out[f.name] = value
    return out


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^/\s]*@")


def mask_url_password(text: str) -> str:
    """`postgresql://user:pw@host/db` → `postgresql://user:**********@host/db` (database URLs are
    plain strings in the settings, yet may carry a password)."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "**********@", text)


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """Render `settings_as_dict` output as TOML (None values are written as comments)."""
    scalars: list[str] = []
    tables: list[str] = []
    for name, value in data.items():
        if isinstance(value, Mapping):
            tables.append(f"\n[{prefix}{name}]\n" + to_toml(value, f"{prefix}{name}."))
        elif value is None:
            scalars.append(f"# {name} = (unset)")
        else:
            scalars.append(f"{name} = {json.dumps(value)}")
    return "\n".join(scalars) + "".join(tables)


def iter_fields(cls: type[Any] = Settings, prefix: str = "") -> typing.Iterator[tuple[str, Any, Any, str]]:
    """(dotted key, type, default, doc) for every leaf setting; for the docs."""
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            yield from iter_fields(tp, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", tp, getattr(instance, f.name), str(f.metadata.get("doc", ""))
