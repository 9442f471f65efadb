"""The floor of issue 2's ratio: how cheap can an accepted web-callback request be in CPython?

Issue 2's goal is accepted POST-JSON web-callback requests/s >= 0.5 x a raw-ASGI hello on the same
server and worker count. This script does not measure the product; it measures the least work any
implementation must do per accepted request, so the goal can be judged with figures:

1. In process (CPU time per call, `time.process_time`, best and median of `--repeat` batches of
   `--calls`, fresh inputs for every call): the JSON body parse; sha1(nonce + password) + constant-time
   compare; the AES-256-GCM decrypt of the stored password (with the username as associated data);
   phonenumbers parse + is_possible + E.164 format of a fresh destination; its number type (the
   toll-fraud policy needs it); and the durable write on a real SQLite file (WAL, synchronous=NORMAL,
   foreign keys on, as the product opens it): nonce INSERT ... ON CONFLICT DO NOTHING (rowcount
   checked), the conditional credit UPDATE, the callback INSERT, committed per request and
   group-committed in batches of 8/32/64/128 (each from an empty database file: the cost per row
   grows with the tables; `--prefill N` starts them at N rows). Also the whole request work of
   `/floor` below without HTTP and the store, in one call, with and without the callback number's
   normalisation cached.
2. Over HTTP: this file is also a raw-ASGI app (no framework), served by uvicorn with
   bench/api_throughput.py's own command line (uvloop, httptools, no access log, 1 worker):
   `/hello` drains the body and answers a fixed JSON, as bench/api_app.py does; `/floor` parses the
   JSON POST, authenticates by sha1(nonce + password) against an in-memory account (AES-GCM decrypt
   every time), normalises and types both numbers with phonenumbers (no cache), then claims the
   nonce, reserves credit and inserts the callback through group commit: the requests of one
   event-loop turn join a batch, one flush callback (`call_soon`) runs the batch in one SQLite
   transaction with plain `sqlite3`, and each request answers only after its batch committed.
   `/floor-cached` is the same with the callback number's normalisation cached (it repeats on every
   request of an account; the product caches it too); `/floor-thread` is `/floor-cached` with each
   batch written on a store thread (sqlite3 releases the GIL inside SQLite) while the next batch
   gathers on the event loop. For attribution only, `/floor-numbers` stops
   before the store and `/floor-auth` after authentication, both answering as if accepted.
   wrk loads them exactly as bench/api_throughput.py does (its functions and bench/wrk_callback.lua:
   every request a fresh nonce and hash and a fresh destination), alternating with `/hello` runs
   (`--endpoints`). After the server stops, the callback rows must be at least the 2xx answers wrk
   counted on the storing endpoints.

What the floor leaves out (the product does more): GeoIP, rate limits and lockout counters, billing
by rates, duplicate suppression, logging, a framework. So the ratio measured here is an upper bound
for any implementation doing at least this work on this server and worker count.

Run each part on its own on a shared machine (each takes 1-2 minutes), e.g.

    .venv/bin/python bench/api_floor.py --only inproc --out var/bench/floor.jsonl
    .venv/bin/python bench/api_floor.py --only http --endpoints floor,floor-cached --out var/bench/floor.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from unittest import mock

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY_LIMIT = 16 * 1024
RESERVE = 600_000  # credit held per callback, in micro-units (10 minutes at 0.06/min)
REFUSED_TYPES = frozenset(
    getattr(phonenumbers.PhoneNumberType, name)
    for name in ("PREMIUM_RATE", "SHARED_COST", "UAN", "PERSONAL_NUMBER", "UNKNOWN")
)
E164 = phonenumbers.PhoneNumberFormat.E164
HELLO_BODY = b'{"message":"ok","user":"benchuser1"}'  # bench/api_app.py's answer
JSON_HEADER = (b"content-type", b"application/json")
STORING = ("/floor", "/floor-cached", "/floor-thread")  # the endpoints that write callbacks
STAGES = {
    "/floor": "store",
    "/floor-cached": "cached",
    "/floor-thread": "thread",
    "/floor-numbers": "numbers",
    "/floor-auth": "auth",
}

SCHEMA = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_enc BLOB NOT NULL,
    callback_number TEXT, region TEXT, balance INTEGER NOT NULL, reserved INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE used_nonces (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE, nonce TEXT NOT NULL,
    seen_at TEXT NOT NULL, PRIMARY KEY (account_id, nonce));
CREATE INDEX ix_used_nonces_seen_at ON used_nonces (seen_at);
CREATE TABLE callbacks (
    id TEXT PRIMARY KEY, account_id INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    username TEXT NOT NULL, destination TEXT NOT NULL, callback TEXT NOT NULL, client_ip TEXT,
    state TEXT NOT NULL, reserved INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX ix_callbacks_account_id ON callbacks (account_id);
CREATE INDEX ix_callbacks_state ON callbacks (state);
CREATE INDEX ix_callbacks_created_at ON callbacks (created_at);
"""
CLAIM = "INSERT INTO used_nonces (account_id, nonce, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
RESERVE_SQL = "UPDATE accounts SET reserved = reserved + ? WHERE id = ? AND balance - reserved >= ?"
INSERT_CALLBACK = (
    "INSERT INTO callbacks (id, account_id, username, destination, callback, client_ip, state, reserved,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)"
)

# --- the floor's request work (shared by the server and the in-process measurements) ------------


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password_enc: bytes  # 12-byte GCM nonce + ciphertext + tag, associated data = username
    callback_number: str
    region: str


@dataclass(frozen=True)
class Claim:
    account_id: int
    username: str
    nonce: str
    callback_id: str
    destination: str
    callback: str
    client_ip: str
    at: str


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = json.dumps({"message": message}).encode()


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def create_db(path: Path, aead: AESGCM, username: str, password: str, callback: str) -> None:
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        nonce = os.urandom(12)
        blob = nonce + aead.encrypt(nonce, password.encode(), username.encode())
        conn.execute(
            "INSERT INTO accounts (id, username, password_enc, callback_number, region, balance)"
            " VALUES (1, ?, ?, ?, 'US', ?)",
            (username, blob, callback, 10**18),
        )
    finally:
        conn.close()


def prefill(path: Path, rows: int) -> None:
    """`rows` earlier requests of account 1 (random nonces and ids, as real ones), in one transaction."""
    conn = connect(path)
    try:
        at = datetime.now(UTC).isoformat()
        claims = [
            Claim(
                1, "prefill", fresh_nonce(), secrets.token_hex(8), fresh_destination(), "+12025550143", "", at
            )
            for _ in range(rows)
        ]
        conn.execute("BEGIN")
        conn.executemany(CLAIM, [(c.account_id, c.nonce, c.at) for c in claims])
        conn.executemany(
            INSERT_CALLBACK,
            [
                (c.callback_id, 1, c.username, c.destination, c.callback, c.client_ip, 0, at, at)
                for c in claims
            ],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def load_accounts(conn: sqlite3.Connection) -> dict[str, Account]:
    rows = conn.execute(
        "SELECT id, username, password_enc, callback_number, region FROM accounts WHERE enabled"
    ).fetchall()
    return {r[1]: Account(*r) for r in rows}


def e164(raw: str, region: str, what: str) -> str:
    """Normalise and type one number; refuse the types the toll-fraud policy refuses."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise Refused(400, f"The {what} is not a valid phone number.") from None
    if not phonenumbers.is_possible_number(parsed):
        raise Refused(400, f"The {what} is not a valid phone number.")
    if phonenumbers.number_type(parsed) in REFUSED_TYPES:
        raise Refused(403, f"Calls to this {what} are not allowed.")
    return str(phonenumbers.format_number(parsed, E164))


def authenticate(body: bytes, accounts: dict[str, Account], aead: AESGCM) -> tuple[Account, str, str, str]:
    """Parse the JSON body and check sha1(nonce + password): (account, nonce, target, callback)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused(400, "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise Refused(400, "The body must be a JSON object.")
    username, nonce, digest = data.get("username"), data.get("nonce"), data.get("hash")
    target, callback = data.get("targetNumber"), data.get("callbackNumber")
    if not (isinstance(username, str) and isinstance(nonce, str) and isinstance(digest, str)):
        raise Refused(400, "username, nonce and hash are required.")
    if not isinstance(target, str) or not (callback is None or isinstance(callback, str)):
        raise Refused(400, "targetNumber is required.")
    account = accounts.get(username)
    if account is None:
        raise Refused(401, "Wrong username or password.")
    blob = account.password_enc
    password = aead.decrypt(blob[:12], blob[12:], username.encode())
    expected = hashlib.sha1(nonce.encode() + password).hexdigest().encode()
    if not hmac.compare_digest(expected, digest.lower().encode()):
        raise Refused(401, "Wrong username or password.")
    return account, nonce, target, callback or account.callback_number


# The callback number repeats on every request of an account (the product caches its normalisation
# too); the destination is new on every request and never goes through a cache.
e164_cached = lru_cache(maxsize=4096)(e164)


def admit(
    body: bytes, client_ip: str, accounts: dict[str, Account], aead: AESGCM, cache_callback: bool = False
) -> Claim:
    """Everything an accepted request needs before the store: parse, authenticate, numbers."""
    account, nonce, target, callback = authenticate(body, accounts, aead)
    destination = e164(target, account.region, "destination number")
    callback_e164 = (e164_cached if cache_callback else e164)(callback, account.region, "callback number")
    now = datetime.now(UTC).isoformat()
    return Claim(
        account.id, account.username, nonce, secrets.token_hex(8), destination, callback_e164, client_ip, now
    )


def write(conn: sqlite3.Connection, claims: Sequence[Claim]) -> list[int]:
    """Claim each nonce, reserve credit, insert the callback: one transaction for all `claims`.
    Per claim: 200 (accepted), 401 (nonce replayed) or 403 (not enough credit)."""
    results: list[int] = []
    execute = conn.execute
    execute("BEGIN")
    try:
        for c in claims:
            if execute(CLAIM, (c.account_id, c.nonce, c.at)).rowcount != 1:
                results.append(401)
            elif execute(RESERVE_SQL, (RESERVE, c.account_id, RESERVE)).rowcount != 1:
                results.append(403)
            else:
                execute(
                    INSERT_CALLBACK,
                    (c.callback_id, c.account_id, c.username, c.destination, c.callback, c.client_ip,
                     RESERVE, c.at, c.at),
                )  # fmt: skip
                results.append(200)
        execute("COMMIT")
    except BaseException:
        execute("ROLLBACK")
        raise
    return results


# --- the ASGI app (uvicorn api_floor:create --factory) -------------------------------------------


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if it exceeds BODY_LIMIT or the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > BODY_LIMIT:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def answer(send: Send, status: int, body: bytes) -> None:
    headers = [JSON_HEADER, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FloorApp:
    def __init__(self, db_path: Path, key: bytes) -> None:
        self.conn = connect(db_path)
        self.accounts = load_accounts(self.conn)
        self.aead = AESGCM(key)
        self.pending: list[tuple[Claim, asyncio.Future[int]]] = []
        self.flushes = 0
        self.flushed = 0
        # /floor-thread: the batch runs on a store thread (sqlite3 releases the GIL inside SQLite),
        # with its own connection; the next batch gathers while one is being written.
        self.store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-store")
        self.thread_conn = connect(db_path)
        self.thread_pending: list[tuple[Claim, asyncio.Future[int]]] = []
        self.thread_busy = False

    def close(self) -> None:
        self.store_thread.shutdown()
        self.conn.close()
        self.thread_conn.close()

    def submit(self, claim: Claim) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self.pending.append((claim, future))
        if len(self.pending) == 1:  # first of this turn: flush once the turn's requests are in
            loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        try:
            results: list[int] | BaseException = write(self.conn, [claim for claim, _ in batch])
        except sqlite3.Error as exc:
            results = exc
        self.settle(batch, results)

    def settle(
        self, batch: list[tuple[Claim, asyncio.Future[int]]], results: list[int] | BaseException
    ) -> None:
        if isinstance(results, BaseException):
            for _, future in batch:
                if not future.done():
                    future.set_exception(results)
            return
        self.flushes += 1
        self.flushed += len(batch)
        for (_, future), status in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(status)

    def submit_threaded(self, claim: Claim) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self.thread_pending.append((claim, future))
        if len(self.thread_pending) == 1 and not self.thread_busy:
            loop.call_soon(self.flush_threaded)
        return future

    def flush_threaded(self) -> None:
        batch, self.thread_pending = self.thread_pending, []
        self.thread_busy = True
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self.store_thread, write, self.thread_conn, [c for c, _ in batch])
        done.add_done_callback(lambda d: self.finish_threaded(batch, d))

    def finish_threaded(
        self, batch: list[tuple[Claim, asyncio.Future[int]]], done: asyncio.Future[list[int]]
    ) -> None:
        self.thread_busy = False
        self.settle(batch, done.exception() or done.result())
        if self.thread_pending:
            asyncio.get_running_loop().call_soon(self.flush_threaded)

    async def floor(self, scope: Scope, body: bytes, stage: str) -> tuple[int, bytes]:
        """/floor (stage "store"); /floor-cached: the same with the callback number's normalisation
        cached; /floor-thread: as /floor-cached, the batches written on the store thread. For
        attribution only, the work stopped early and answered as accepted: /floor-numbers (no
        store), /floor-auth (JSON and authentication only)."""
        client = scope.get("client")
        try:
            if stage == "auth":
                authenticate(body, self.accounts, self.aead)
                return 200, b'{"id":"0000000000000000","state":"queued"}'
            claim = admit(body, client[0] if client else "", self.accounts, self.aead, stage != "store")
        except Refused as refused:
            return refused.status, refused.body
        if stage == "numbers":
            status = 200
        else:
            status = await (self.submit_threaded(claim) if stage == "thread" else self.submit(claim))
        if status == 200:
            return 200, b'{"id":"%s","state":"queued"}' % claim.callback_id.encode()
        message = b"Not enough credit for this call." if status == 403 else b"Wrong username or password."
        return status, b'{"message":"%s"}' % message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"]
        if body is None:
            await answer(send, 413, b'{"message":"The body is too large."}')
        elif path == "/hello":
            await answer(send, 200, HELLO_BODY)
        elif path in STAGES and scope["method"] == "POST":
            await answer(send, *await self.floor(scope, body, STAGES[path]))
        elif path == "/stats":
            await answer(send, 200, json.dumps({"flushes": self.flushes, "flushed": self.flushed}).encode())
        elif path == "/healthz":
            await answer(send, 200, b"{}")
        else:
            await answer(send, 404, b'{"message":"Not found."}')


def create() -> FloorApp:
    return FloorApp(Path(os.environ["WCB_FLOOR_DB"]), base64.b64decode(os.environ["WCB_FLOOR_KEY"]))


# --- in-process costs ----------------------------------------------------------------------------


@dataclass
class Cost:
    op: str
    best_us: float
    median_us: float
    wall_median_us: float
    calls: int
    repeats: int


def measure(
    op: str, inputs: Callable[[int], list[Any]], fn: Callable[[Any], object], calls: int, repeats: int
) -> Cost:
    """CPU (and wall) time per call of fn over fresh inputs, `repeats` batches of `calls`."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(repeats):
        xs = inputs(calls)
        c0, w0 = time.process_time(), time.perf_counter()
        for x in xs:
            fn(x)
        cpu.append((time.process_time() - c0) / calls * 1e6)
        wall.append((time.perf_counter() - w0) / calls * 1e6)
    return Cost(op, min(cpu), statistics.median(cpu), statistics.median(wall), calls, repeats)


def fresh_nonce() -> str:
    return "n" + secrets.token_hex(10)


def fresh_destination() -> str:
    return f"+1650253{random.randrange(10_000):04d}"


def request_body(username: str, password: str, callback: str) -> bytes:
    nonce = fresh_nonce()
    digest = hashlib.sha1((nonce + password).encode()).hexdigest()
    return json.dumps(
        {"username": username, "nonce": nonce, "hash": digest,
         "targetNumber": fresh_destination(), "callbackNumber": callback},
        separators=(",", ":"),
    ).encode()  # fmt: skip


def inproc(args: argparse.Namespace, username: str, password: str, callback: str) -> list[Cost]:
    n, r = args.calls, args.repeat
    key = AESGCM.generate_key(bit_length=256)
    aead = AESGCM(key)
    pw = password.encode()

    def bodies(k: int) -> list[bytes]:
        return [request_body(username, password, callback) for _ in range(k)]

    def auth_inputs(k: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(k):
            nonce = fresh_nonce()
            out.append((nonce, hashlib.sha1((nonce + password).encode()).hexdigest()))
        return out

    def check_hash(x: tuple[str, str]) -> bool:
        return hmac.compare_digest(
            hashlib.sha1(x[0].encode() + pw).hexdigest().encode(), x[1].lower().encode()
        )

    def blobs(k: int) -> list[bytes]:
        out = []
        for _ in range(k):
            nonce = os.urandom(12)
            out.append(nonce + aead.encrypt(nonce, pw, username.encode()))
        return out

    def decrypt(blob: bytes) -> bytes:
        return aead.decrypt(blob[:12], blob[12:], username.encode())

    def destinations(k: int) -> list[str]:
        return [fresh_destination() for _ in range(k)]

    def normalise(raw: str) -> str:
        parsed = phonenumbers.parse(raw, "US")
        phonenumbers.is_possible_number(parsed)
        return str(phonenumbers.format_number(parsed, E164))

    def parsed(k: int) -> list[Any]:
        return [phonenumbers.parse(fresh_destination(), "US") for _ in range(k)]

    costs = [
        measure("(a) json.loads of the request body", bodies, json.loads, n, r),
        measure("(b) sha1(nonce+password) hex + compare_digest", auth_inputs, check_hash, n, r),
        measure("(c) AES-256-GCM decrypt of the password (with AD)", blobs, decrypt, n, r),
        measure("(d) phonenumbers parse + is_possible + format E.164", destinations, normalise, n, r),
        measure("(e) phonenumbers.number_type", parsed, phonenumbers.number_type, n, r),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="wcb-floor-"))
    try:
        accounts: dict[str, Account] = {}

        def claims(k: int) -> list[Claim]:
            return [admit(b, "127.0.0.1", accounts, aead) for b in bodies(k)]

        for batch in (1, *args.batches):
            # A fresh database for each batch size: the cost per row grows with the tables.
            db = workdir / f"floor-{batch}.db"
            create_db(db, aead, username, password, callback)
            prefill(db, args.prefill)
            conn = connect(db)
            accounts = load_accounts(conn)
            calls = n - n % batch

            def groups(k: int, batch: int = batch) -> list[list[Claim]]:
                cs = claims(k * batch)
                return [cs[i : i + batch] for i in range(0, k * batch, batch)]

            def run(group: list[Claim], conn: sqlite3.Connection = conn) -> None:
                if write(conn, group) != [200] * len(group):
                    raise RuntimeError("a write was refused")

            label = "commit per request" if batch == 1 else f"group commit of {batch}"
            cost = measure(f"(f) SQLite nonce+reserve+callback, {label}", groups, run, calls // batch, r)
            # measure() counted per batch; per request:
            cost.best_us /= batch
            cost.median_us /= batch
            cost.wall_median_us /= batch
            cost.calls = calls
            costs.append(cost)
            conn.close()
        # The whole request work of /floor without HTTP and without the store.
        costs.append(
            measure(
                "(g) /floor request work without the store: (a)+(b)+(c)+2x((d)+(e)), id, timestamp",
                bodies, lambda body: admit(body, "127.0.0.1", accounts, aead), n, r,
            )
        )  # fmt: skip
        costs.append(
            measure(
                "(h) as (g), the callback number's normalisation cached",
                bodies, lambda body: admit(body, "127.0.0.1", accounts, aead, True), n, r,
            )
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return costs


# --- over HTTP -----------------------------------------------------------------------------------


@contextlib.contextmanager
def floor_server(db: Path, key: bytes, log: Path) -> Iterator[tuple[int, str]]:
    """This file's app on uvicorn, started and stopped by api_throughput.running_server with
    api_throughput's own uvicorn command line (only the app reference differs)."""
    import api_throughput as at

    command = at.server_command

    def floor_command(server: str, workers: int, port: int) -> list[str]:
        return ["api_floor:create" if a == "api_app:create" else a for a in command(server, workers, port)]

    env = {"WCB_FLOOR_DB": str(db), "WCB_FLOOR_KEY": base64.b64encode(key).decode()}
    with (
        mock.patch.object(at, "server_command", floor_command),
        at.running_server("uvicorn", 1, env, log, ROOT / "src") as (pid, base),
    ):
        yield pid, base


def http_part(args: argparse.Namespace, out: Any) -> list[dict[str, Any]]:
    import api_throughput as at
    import httpx

    rows: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="wcb-floor-"))
    try:
        db = workdir / "floor.db"
        key = AESGCM.generate_key(bit_length=256)
        create_db(db, AESGCM(key), at.USER, at.PASSWORD, at.CALLBACK)
        prefill(db, args.prefill)
        accepted = 0
        with floor_server(db, key, workdir / "server.log") as (pid, base):
            body = request_body(at.USER, at.PASSWORD, at.CALLBACK)
            first = httpx.post(base + "/floor", content=body, timeout=5)
            if first.status_code != 200 or "id" not in first.json():
                raise RuntimeError(f"signed request not accepted: {first.status_code} {first.text}")
            if httpx.post(base + "/floor", content=body, timeout=5).status_code != 401:
                raise RuntimeError("replayed nonce was not refused with 401")
            accepted += 1
            paths = ["/hello", *("/" + e for e in args.endpoints)]
            for path in paths:  # warm-up, not recorded
                warm, _ = at.run_wrk(base, path, args.warmup, args.connections, args.threads)
                if path in STORING:
                    accepted += warm["requests"] - warm["non2xx"] - warm["socket_errors"]
            for run in range(args.runs):
                for path in paths if run % 2 == 0 else paths[::-1]:  # hello first, then last, ...
                    at.wait_idle(args.wait_idle)
                    stats0 = httpx.get(base + "/stats", timeout=5).json()
                    load0 = os.getloadavg()[0]
                    res, srv, wrk, foreign, _ = at.measured_run(base, pid, path, args)
                    load1 = os.getloadavg()[0]
                    stats1 = httpx.get(base + "/stats", timeout=5).json()
                    if path in STORING:
                        accepted += res["requests"] - res["non2xx"]
                    flushes = stats1["flushes"] - stats0["flushes"]
                    row = {
                        "part": "http",
                        "endpoint": path.strip("/"),
                        "run": run,
                        "rps": res["rps"],
                        "requests": res["requests"],
                        "non2xx": res["non2xx"],
                        "socket_errors": res["socket_errors"],
                        "p50_ms": res["p50_ms"],
                        "p99_ms": res["p99_ms"],
                        "server_cores": round(srv, 3),
                        "server_us_per_req": round(srv * 1e6 / max(res["rps"], 1), 1),
                        "wrk_cores": round(wrk, 3),
                        "foreign_cores": round(foreign, 3),
                        "mean_batch": round((stats1["flushed"] - stats0["flushed"]) / flushes, 1)
                        if flushes
                        else None,
                        "load1": [load0, load1],
                        "label": args.label,
                    }
                    rows.append(row)
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print(
                        f"  {row['endpoint']:6} run {run}: {row['rps']:8.0f} req/s"
                        f"  p99 {row['p99_ms']:7.2f} ms"
                        f"  server {srv:.2f} cores = {row['server_us_per_req']:.0f} us/req"
                        f"  wrk {wrk:.2f}  foreign {foreign:+.2f}  batch {row['mean_batch']}"
                        f"  non2xx {res['non2xx']}  load {load0:.2f}->{load1:.2f}",
                        flush=True,
                    )
        conn = connect(db)
        stored = conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
        conn.close()
        print(f"  callbacks stored: {stored}; 2xx answers counted by wrk (+ sanity check): {accepted}")
        if stored < accepted:
            raise RuntimeError(f"only {stored} callbacks stored for {accepted} accepted answers")
        check = {"part": "http-check", "stored": stored, "accepted": accepted, "label": args.label}
        out.write(json.dumps(check) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


# --- summary -------------------------------------------------------------------------------------


def summarise(costs: list[Cost], rows: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    if costs:
        lines += ["| operation | best µs | median µs | wall median µs |", "|---|--:|--:|--:|"]
        lines += [f"| {c.op} | {c.best_us:.2f} | {c.median_us:.2f} | {c.wall_median_us:.2f} |" for c in costs]
    hello = [r for r in rows if r["endpoint"] == "hello"]
    if not hello:
        return "\n".join(lines)
    h_rps = statistics.median(r["rps"] for r in hello)
    h_us = statistics.median(r["server_us_per_req"] for r in hello)
    lines += [
        "",
        "| endpoint | req/s median [min–max] | p99 ms | ratio to hello (of medians) | median of pair ratios "
        "| server CPU µs/req | hello CPU ÷ its CPU | mean batch |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for endpoint in dict.fromkeys(r["endpoint"] for r in rows):
        sel = [r for r in rows if r["endpoint"] == endpoint]
        rps = [r["rps"] for r in sel]
        us = statistics.median(r["server_us_per_req"] for r in sel)
        pairs = [r["rps"] / h["rps"] for h in hello for r in sel if r["run"] == h["run"] and h["rps"]]
        batches = [r["mean_batch"] for r in sel if r["mean_batch"]]
        lines.append(
            f"| {endpoint} | {statistics.median(rps):,.0f} [{min(rps):,.0f}–{max(rps):,.0f}]"
            f" | {statistics.median(r['p99_ms'] for r in sel):.1f}"
            f" | {statistics.median(rps) / h_rps:.2f} | {statistics.median(pairs):.2f} | {us:.0f}"
            f" | {h_us / us:.2f} | {f'{statistics.median(batches):.1f}' if batches else '–'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("inproc", "http"), default=None, help="one part (default: both)")
    parser.add_argument("--calls", type=int, default=2048, help="calls per in-process batch")
    parser.add_argument("--repeat", type=int, default=15, help="in-process batches per operation")
    parser.add_argument("--batches", default="8,32,64,128", help="group-commit sizes measured in process")
    parser.add_argument(
        "--prefill", type=int, default=0, help="callback and nonce rows in each database before timing"
    )
    parser.add_argument(
        "--endpoints",
        default="floor",
        help="measured next to /hello: floor, floor-cached, and for attribution floor-numbers, floor-auth",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds of (hello, endpoints...) runs")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wait-idle", type=float, default=3, help="max seconds to wait for an idle machine")
    parser.add_argument("--label", default="", help="tag stored with every result row")
    parser.add_argument("--out", default=None, help="JSON-lines file to append the results to")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    if unknown := {"/" + e for e in args.endpoints} - STAGES.keys():
        parser.error(f"unknown endpoints: {sorted(unknown)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server is stopped on kill
    import api_throughput as at  # the harness only: the server process stays free of webcallback

    # The account wrk_callback.lua signs for, as api_throughput.run_wrk configures it.
    username, password, callback = at.USER, at.PASSWORD, at.CALLBACK
    out = open(args.out, "a") if args.out else open(os.devnull, "w")  # noqa: SIM115
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    costs: list[Cost] = []
    rows: list[dict[str, Any]] = []
    with out:
        if args.only in (None, "inproc"):
            costs = inproc(args, username, password, callback)
            for c in costs:
                out.write(
                    json.dumps({"part": "inproc", **vars(c), "load1": load[0], "label": args.label}) + "\n"
                )
        if args.only in (None, "http"):
            if shutil.which("wrk") is None:
                sys.exit("wrk is needed: apt-get install wrk")
            rows = http_part(args, out)
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(summarise(costs, rows))


if __name__ == "__main__":
    main()
