"""CPU per request of the web-callback path, in process: no socket, no server, no load generator.

Companion to `api_throughput.py` for optimisation work on a noisy shared machine. It calls the same
ASGI app (`bench/api_app.py`: the real app + raw-ASGI `/hello`) directly with a prepared scope, each
call a JSON POST with a fresh nonce and its sha1 hash, on a real SQLite file (or `--db-url`), and
reports CPU time per request (`time.process_time`, so time lost to other tenants' processes does not
count) as the best and the median of `--repeat` batches. Other tenants still inflate CPU time (shared
caches and cores), and only ever upwards, so on a busy machine the best of many small batches is the
steadier estimate. `--profile` adds a cProfile of one batch. Set WCB_SRC to
measure another source tree (before/after comparisons).

    PYTHONPATH=src .venv/bin/python bench/api_inproc.py --requests 2000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [os.environ.get("WCB_SRC", str(BENCH.parent / "src")), str(BENCH.parent), str(BENCH)]

import api_app  # noqa: E402
import api_throughput as at  # noqa: E402


def scope_for(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Caller:
    def __init__(self, app: api_app.ASGIApp, accounts: int = 1, target_digits: int = 4) -> None:
        self.app = app
        self.counter = 0
        self.users = at.usernames(accounts)
        self.target_digits = target_digits

    def target(self) -> str:
        """As bench/wrk_callback.lua: 4 varying digits, or 7 (an exchange 200-999, then 4)."""
        if self.target_digits == 7:
            exchange = 200 + (self.counter // 10000) % 800
            return f"{at.TARGET_PREFIX[:5]}{exchange:03d}{self.counter % 10000:04d}"
        return f"{at.TARGET_PREFIX}{self.counter % 10000:04d}"

    def body(self) -> bytes:
        self.counter += 1
        nonce = f"inproc{os.getpid()}n{self.counter:09d}"
        digest = hashlib.sha1((nonce + at.PASSWORD).encode()).hexdigest()
        fields = {
            "username": self.users[self.counter % len(self.users)],
            "nonce": nonce,
            "hash": digest,
            "targetNumber": self.target(),
            "callbackNumber": at.CALLBACK,
        }
        return json.dumps(fields).encode()

    async def call(self, path: str, body: bytes) -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope_for(path, body), receive, send)
        return int(status)

    async def batch(self, path: str, n: int) -> float:
        """CPU seconds per request over n requests (bodies built before the clock starts)."""
        bodies = [self.body() for _ in range(n)]
        start = time.process_time()
        for body in bodies:
            status = await self.call(path, body)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
        return (time.process_time() - start) / n


@contextlib.asynccontextmanager
async def lifespan(app: api_app.ASGIApp) -> AsyncIterator[None]:
    """Run the app's lifespan (its hooks: housekeeping, WAL checkpoints) as a server would."""
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    await messages.put({"type": "lifespan.startup"})

    async def send(message: Any) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message"))

    task = asyncio.ensure_future(app({"type": "lifespan"}, messages.get, send))
    await started.wait()
    try:
        yield
    finally:
        await messages.put({"type": "lifespan.shutdown"})
        await task


async def main_async(args: argparse.Namespace) -> None:
    app = api_app.create()
    async with lifespan(app):
        await measure(Caller(app, args.accounts, args.target_digits), args)


async def measure(caller: Caller, args: argparse.Namespace) -> None:
    await caller.batch("/webcallback", 50)  # warm caches (statement cache, phonenumbers metadata)
    results: dict[str, list[float]] = {"/hello": [], "/webcallback": []}
    for _ in range(args.repeat):
        for path in results:
            results[path].append(await caller.batch(path, args.requests))
    for path, values in results.items():
        us = [v * 1e6 for v in values]
        print(
            f"{path:13} CPU per request: best {min(us):7.1f} µs  median {statistics.median(us):7.1f} µs"
            f"  (max {max(us):.1f}; {len(us)} batches of {args.requests})"
        )
    if args.profile:
        profiler = cProfile.Profile()
        bodies = [caller.body() for _ in range(args.requests)]
        profiler.enable()
        for body in bodies:
            await caller.call("/webcallback", body)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.profile).print_stats(args.profile_lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per batch")
    parser.add_argument("--repeat", type=int, default=5, help="batches per endpoint")
    parser.add_argument("--db-url", default=None, help="default: a SQLite file in a temp dir")
    parser.add_argument("--accounts", type=int, default=5000, help="as bench/api_throughput.py")
    parser.add_argument("--target-digits", type=int, default=7, choices=(4, 7))
    parser.add_argument("--profile", default=None, help="cProfile sort key, e.g. tottime or cumulative")
    parser.add_argument("--profile-lines", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wcb-inproc-") as tmp:
        env = at.settings_env(args.db_url or f"sqlite:///{tmp}/webcallback.db", args.accounts)
        at.prepare_database(env, args.accounts)
        os.environ.update(env)
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
