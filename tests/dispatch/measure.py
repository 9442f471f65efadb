"""Measure the dispatcher end to end: N callbacks requested at once over HTTP from `webcallback run`
(real SIP engine) to one SIPp phone (the lab scenario, ring 0.3 s, talk 1.5 s); prints how many
completed, the delay from queued to the first INVITE, and the most callbacks in flight at once
(from the stored leg times).

    PYTHONPATH=src python -m tests.dispatch.measure N [CONCURRENCY] [sqlite|postgres] [--sequential]

`--sequential` sends the requests one after another instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.dispatch.service_process import running_service, service_env
from tests.dispatch.test_end_to_end import PASSWORD, add_account, short_talk_scenario
from tests.pgserver import postgres_server
from webcallback.lab.phones import LabPhones, free_udp_port


async def request(client: httpx.AsyncClient, url: str, i: int) -> str:
    nonce = secrets.token_hex(8)
    digest = hashlib.sha1((nonce + PASSWORD).encode()).hexdigest()
    body = {"username": "alice", "nonce": nonce, "hash": digest, "to": f"+1555010{i:04d}"}
    return str((await client.post(url + "/webcallback", json=body)).json()["id"])


def most_at_once(done: list[dict[str, Any]]) -> int:
    edges = [(datetime.fromisoformat(d["legs"]["destination"]["trying_at"]), 1) for d in done]
    edges += [(datetime.fromisoformat(d["ended_at"]), -1) for d in done]
    now = most = 0
    for _, step in sorted(edges):
        now += step
        most = max(most, now)
    return most


async def request_all(url: str, n: int, sequential: bool) -> list[str]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as client:
        if sequential:
            return [await request(client, url, i) for i in range(n)]
        return list(await asyncio.gather(*(request(client, url, i) for i in range(n))))


async def measure(n: int, concurrency: str, db_url: str, tmp: Path, sequential: bool) -> None:
    scenario = short_talk_scenario(tmp)
    async with LabPhones(free_udp_port(), ring_ms=300, log_dir=tmp / "phones", scenario=scenario) as phones:
        settings = {"CALLS__CONCURRENCY": concurrency, "BILLING__ENABLED": "false"}
        env = service_env(db_url, ENGINE__SIP__TRUNK=phones.uri, API__TOKEN="t", **settings)
        add_account(env)
        (tmp / "service").mkdir()
        with running_service(env, tmp / "service") as service:
            started = time.monotonic()
            ids = await request_all(service.url, n, sequential)
            accepted = time.monotonic() - started
            done = [service.wait_status(i, ("completed", "failed"), timeout=300) for i in ids]
            wall = time.monotonic() - started
    delays = sorted(
        (
            datetime.fromisoformat(d["legs"]["destination"]["trying_at"])
            - datetime.fromisoformat(d["created_at"])
        ).total_seconds()
        * 1000
        for d in done
    )
    completed, at_once = sum(d["state"] == "completed" for d in done), most_at_once(done)
    how = "one after another" if sequential else "at once"
    print(f"{n} callbacks {how}, concurrency {concurrency}, {db_url.split(':')[0]}: "
          f"accepted in {accepted:.2f} s, "
          f"all ended in {wall:.2f} s, {completed} completed, at most {at_once} at once")  # fmt: skip
    print(f"  queued -> first INVITE: median {statistics.median(delays):.0f} ms, "
          f"p95 {delays[max(0, int(len(delays) * 0.95) - 1)]:.0f} ms, max {delays[-1]:.0f} ms")  # fmt: skip


def main() -> None:
    sequential = "--sequential" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--sequential"]
    n = int(args[0])
    concurrency = args[1] if len(args) > 1 else "500"
    backend = args[2] if len(args) > 2 else "sqlite"
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if backend == "postgres":
            db_url = stack.enter_context(postgres_server()).create_database()
        else:
            db_url = f"sqlite:///{tmp / 'webcallback.db'}"
        asyncio.run(measure(n, concurrency, db_url, tmp, sequential))


if __name__ == "__main__":
    main()
