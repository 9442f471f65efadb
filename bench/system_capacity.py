"""The whole node end to end: `webcallback run` (HTTP API + dispatcher + embedded SIP engine, as a
provider runs it) driven over HTTP at a constant rate, with SIPp answering every call on loopback.

1. One SIPp UAS (`bench/sipp/uas_answer.xml`, unlimited calls, `--ring-ms` before answering) on a
   free 127.0.0.1 port is the trunk: `[engine.sip] trunk` points at it, so it answers both legs of
   every callback (the destination and the callback number). It never hangs up; the service does,
   after `[calls] max_duration = --talk` seconds bridged.
2. A fresh SQLite database (or, with `--db postgres`, a database on a server `tests/pgserver.py`
   starts) is migrated and gets `--accounts` accounts, each with its own callback number and credit,
   and a one-line rate plan (billing on), by `bench/api_throughput.py`'s helpers.
3. `webcallback run --config <toml>` runs in a child process (its own session), HTTP and SIP on free
   ports in 20000-32000 (outside the kernel's ephemeral range, see `webcallback.lab.phones`),
   `[engine.sip] processes = --processes`, `[calls] concurrency` the default (500) unless
   `--concurrency` is given: at R callbacks/s a callback holds a slot for about talk + 0.3 s, so
   the default caps a node at about 500 / 5.3 = 94/s with 5 s of talk. Limits are the defaults except
   `security.limits.requests_per_minute_per_ip = 0` (every request comes from 127.0.0.1: the default
   120/min would refuse nearly all of them). Accounts are used round robin, so each stays under the
   default 10 requests/min per user, 100 callbacks/day and 1 callback in progress (with the default
   2,000 accounts and rates up to 200/s, an account is reused every 10 s or more, longer than a
   callback lives: ring + talk).
4. An asyncio driver queues floor(rate * t) requests by t (a 10 ms ticker) for `--duration` seconds,
   which `--connections` keep-alive HTTP/1.1 connections (raw asyncio streams) take in order; each
   request is the app's salted-hash login (fresh nonce, sha1(nonce + password)) with a destination
   no other request of the run uses. HTTP latency is measured from the request's scheduled time (so
   a late driver shows as latency, not as a lower rate). Then it waits (one `GROUP BY state` query a
   second) until no callback is queued, dialing or bridged, or `--settle` seconds.
5. After the service stopped (SIGTERM, as systemd would), it reads the database: callbacks by state
   and reason, request (created_at) -> bridged (CDR bridged_at) and request -> claimed (started_at)
   percentiles, and the peak number of callbacks bridged at once (sweep over CDR bridged_at..ended_at).

`--pyspy START:SECONDS` records the service's parent process with py-spy (`engine_capacity`'s
`start_pyspy`; `PYSPY` names the binary), summarised by `bench/pyspy_top.py`.

Sampled every second (`progress.ndjson`): CPU cores of the service's process tree (the parent, and
each SIP worker), of SIPp, of this driver, and of everything else on the machine ("other"); RSS of
the service tree. The summary (`summary.json` in `--out` and stdout) gives means over the steady
window (talk + 3 s .. end of requests), when calls are both starting and ending.

    flock "$LOCK" env PYTHONPATH=src .venv/bin/python bench/system_capacity.py \
        --rate 100 --duration 60 --talk 5 --processes 2 --out var/bench/system-r100-p2

Loopback only; every child is stopped by its own pid (SIPp runs under coreutils `timeout`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [os.environ.get("WCB_SRC", str(ROOT / "src")), str(ROOT), str(ROOT / "bench")]

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from api_throughput import (  # noqa: E402
    PASSWORD,
    USER_PREFIX,
    database,
    machine_busy_ticks,
    prepare_database,
    usernames,
)
from engine_capacity import (  # noqa: E402
    Child,
    percentiles,
    proc_ticks,
    rss_mb,
    sipp_stats,
    start_pyspy,
    start_sipp,
)

from webcallback.config import load_settings  # noqa: E402
from webcallback.lab.phones import LAB_PORTS, free_udp_port, udp_port_bound  # noqa: E402
from webcallback.service.container import build_services  # noqa: E402
from webcallback.store.schema import accounts as accounts_table  # noqa: E402
from webcallback.store.schema import callbacks as callbacks_table  # noqa: E402
from webcallback.store.telephony import callback_cdrs  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
TOKEN = "bench-status-token"
DEST_PREFIX = "+1650"  # + 7 digits, unique per request (numbers the default policy admits)
CALLBACK_PREFIX = "+1202"  # + 7 digits, one per account


# --- ports, processes ----------------------------------------------------------------------------


def free_tcp_port() -> int:
    """A TCP port free now, in the lab's range (outside the ephemeral range)."""
    for _ in range(500):
        port = int.from_bytes(os.urandom(2), "big") % (LAB_PORTS[1] - LAB_PORTS[0]) + LAB_PORTS[0]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port")


def free_udp_run(count: int) -> int:
    """A UDP port in the lab's range with the next `count - 1` free too (SIP worker i: port + i)."""
    for _ in range(200):
        port = free_udp_port()
        free = not any(udp_port_bound("127.0.0.1", port + i) for i in range(1, count))
        if port + count <= LAB_PORTS[1] and free:
            return port
    raise RuntimeError(f"no {count} free UDP ports in a row")


def tree_pids(root: int) -> list[int]:
    """root and its descendants (the kernel's per-thread `children` lists), root first."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        for kids in Path(f"/proc/{pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(k) for k in kids.read_text().split())
    return out


# --- the service ---------------------------------------------------------------------------------


def write_config(path: Path, db_url: str, key: str, http_port: int, sip_port: int, sipp_port: int,
                 args: argparse.Namespace) -> None:  # fmt: skip
    path.write_text(
        f"""[server]
listen = "127.0.0.1:{http_port}"

[database]
url = "{db_url}"

[secrets]
key = "{key}"

[api]
token = "{TOKEN}"

[engine]
kind = "sip"

[engine.sip]
listen = "127.0.0.1:{sip_port}"
trunk = "sip:127.0.0.1:{sipp_port}"
processes = {args.processes}

[calls]
max_duration = {args.talk}
{f"concurrency = {args.concurrency}" if args.concurrency else "# concurrency: the default"}

[security.limits]
# every request comes from 127.0.0.1, one load generator; the only limit changed
requests_per_minute_per_ip = 0
"""
    )


def add_accounts(env: dict[str, str], accounts: int) -> list[str]:
    """api_throughput's accounts and plan, then each account its own callback number and a
    provider-like credit (100 USD instead of 10**9)."""
    prepare_database(env, accounts)
    names = usernames(accounts)
    services = build_services(load_settings(path=os.devnull, environ=env), migrate=False)
    try:
        with services.db.engine.begin() as conn:
            conn.execute(
                accounts_table.update()
                .where(accounts_table.c.username == sa.bindparam("u"))
                .values(callback_number=sa.bindparam("cb"), balance=Decimal(100)),
                [{"u": name, "cb": f"{CALLBACK_PREFIX}{5550000 + i:07d}"} for i, name in enumerate(names)],
            )
    finally:
        services.close()
    return names


class Service:
    def __init__(self, config: Path, workdir: Path, base: str) -> None:
        self.base = base
        self.log = workdir / "service.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBCALLBACK_")}
        env["PYTHONPATH"] = os.pathsep.join([os.environ.get("WCB_SRC", str(ROOT / "src")), str(ROOT)])
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webcallback", "run", "--config", str(config)],
                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"webcallback run exited {self.proc.returncode}: see {self.log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"webcallback run did not answer: see {self.log}")
            time.sleep(0.1)

    def stop(self, grace: float = 60) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


# --- the driver ----------------------------------------------------------------------------------


@dataclass
class Track:
    sent: int = 0
    answered: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)  # from the scheduled time
    sent_latency_ms: list[float] = field(default_factory=list)  # from when the driver sent it
    late_ms: list[float] = field(default_factory=list)  # driver lag: actual start - scheduled
    ids: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection on raw asyncio streams: a few µs of CPU per request,
    where httpx's pool cost ~2 ms and grew with the number of requests waiting for it."""

    IDLE_S = 4.0  # reopen before uvicorn's keep-alive timeout (5 s) closes it under us

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or time.monotonic() - self.used > self.IDLE_S:
            self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        self.used = time.monotonic()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


Job = tuple[int, str, float]  # request number, username, scheduled time


async def http_worker(conn: HttpConnection, jobs: asyncio.Queue[Job | None], timeout: float,
                      track: Track) -> None:  # fmt: skip
    while (job := await jobs.get()) is not None:
        i, user, scheduled = job
        started = time.monotonic()
        track.late_ms.append((started - scheduled) * 1000)
        nonce = secrets.token_hex(8)
        body = {
            "username": user,
            "nonce": nonce,
            "hash": hashlib.sha1((nonce + PASSWORD).encode()).hexdigest(),
            "to": f"{DEST_PREFIX}{2530000 + i:07d}",
        }
        track.sent += 1
        try:
            posted = conn.post("/webcallback", json.dumps(body).encode())
            status, payload = await asyncio.wait_for(posted, timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            track.statuses[f"error: {type(exc).__name__}"] += 1
            conn.close()
            continue
        done = time.monotonic()
        track.latency_ms.append((done - scheduled) * 1000)
        track.sent_latency_ms.append((done - started) * 1000)
        track.answered += 1
        track.statuses[str(status)] += 1
        if status == 200:
            with contextlib.suppress(ValueError, KeyError):
                track.ids.append(str(json.loads(payload)["id"]))
    conn.close()


def states(db: sa.Engine) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(callbacks_table.c.state, sa.func.count()).group_by(callbacks_table.c.state)
        ).all()
    return {str(s): int(n) for s, n in rows}


async def drive(args: argparse.Namespace, workdir: Path, service: Service, sipp: Child, db: sa.Engine,
                names: list[str], track: Track) -> dict[str, Any]:  # fmt: skip
    stop = asyncio.Event()
    progress = open(workdir / "progress.ndjson", "w")  # noqa: SIM115 (closed below)
    me = os.getpid()
    pids = tree_pids(service.proc.pid)
    t_start = time.monotonic()

    async def monitor() -> None:
        def ticks() -> tuple[list[int], int, int, int, int, float]:
            return ([proc_ticks(p) for p in pids], proc_ticks(sipp.pid), proc_ticks(me),
                    *machine_busy_ticks(), time.monotonic())  # fmt: skip

        last = ticks()
        while not stop.is_set():
            await asyncio.sleep(1)
            now = ticks()
            dt = now[5] - last[5]
            each = [(n - o) / CLK_TCK / dt for n, o in zip(now[0], last[0], strict=True)]
            sipp_c = (now[1] - last[1]) / CLK_TCK / dt
            drv_c = (now[2] - last[2]) / CLK_TCK / dt
            busy = (now[3] - last[3]) / max(now[4] - last[4], 1) * NCPU
            sample = {
                "t": round(now[5] - t_start, 2),
                "sent": track.sent,
                "answered": track.answered,
                "service_cores": round(sum(each), 3),
                "parent_cores": round(each[0], 3),
                "worker_cores": [round(x, 3) for x in each[1:]],
                "sipp_cores": round(sipp_c, 3),
                "driver_cores": round(drv_c, 3),
                "other_cores": round(busy - sum(each) - sipp_c - drv_c, 3),
                "service_rss_mb": round(sum(rss_mb(p) for p in pids), 1),
            }
            track.samples.append(sample)
            progress.write(json.dumps(sample) + "\n")
            progress.flush()
            last = now

    monitor_task = asyncio.create_task(monitor())
    jobs: asyncio.Queue[Job | None] = asyncio.Queue()
    port = int(service.base.rsplit(":", 1)[1])
    workers = [
        asyncio.create_task(http_worker(HttpConnection("127.0.0.1", port), jobs, args.http_timeout, track))
        for _ in range(args.connections)
    ]
    pyspy: Child | None = None
    t0 = time.monotonic()
    i = 0
    while (elapsed := time.monotonic() - t0) < args.duration:
        due = int(args.rate * elapsed) + 1  # request i is due at i / rate
        while i < due:
            jobs.put_nowait((i, names[i % len(names)], t0 + i / args.rate))
            i += 1
        if args.pyspy and pyspy is None and elapsed >= args.pyspy[0]:
            pyspy = start_pyspy(service.proc.pid, workdir, args.pyspy[1])
        await asyncio.sleep(0.01)
    requests_s = time.monotonic() - t0
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    # until every accepted callback is final (one light query a second)
    settle_deadline = time.monotonic() + args.settle
    last_states: dict[str, int] = {}
    while time.monotonic() < settle_deadline:
        last_states = await asyncio.to_thread(states, db)
        if not any(last_states.get(s) for s in ("queued", "dialing", "bridged")):
            break
        await asyncio.sleep(1)
    settled_s = time.monotonic() - t0
    stop.set()
    await monitor_task
    progress.close()
    if pyspy is not None:
        pyspy.stop(signal.SIGINT)
    return {"requests_s": round(requests_s, 2), "settled_s": round(settled_s, 2),
            "states_at_settle": last_states}  # fmt: skip


# --- results -------------------------------------------------------------------------------------


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def from_database(db: sa.Engine) -> dict[str, Any]:
    cb, cdr = callbacks_table, callback_cdrs
    columns = (cb.c.state, cb.c.reason, cb.c.created_at, cb.c.started_at,
               cdr.c.bridged_at, cdr.c.ended_at, cdr.c.bridged_s)  # fmt: skip
    query = sa.select(*columns).select_from(cb.outerjoin(cdr, cdr.c.callback_id == cb.c.id))
    with db.connect() as conn:
        rows = conn.execute(query).all()
    by_state: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    to_bridged, to_claimed, bridged_s = [], [], []
    events: list[tuple[datetime, int]] = []
    for state, reason, created, started, bridged, ended, talk in rows:
        by_state[state] += 1
        if state == "failed":
            failed[reason or "?"] += 1
        created, started, bridged, ended = (as_utc(x) for x in (created, started, bridged, ended))
        if created and started:
            to_claimed.append((started - created).total_seconds() * 1000)
        if created and bridged:
            to_bridged.append((bridged - created).total_seconds() * 1000)
            bridged_s.append(float(talk or 0))
            if ended:
                events += [(bridged, 1), (ended, -1)]
    now = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        now += step
        peak = max(peak, now)
    return {
        "callbacks": len(rows),
        "by_state": dict(by_state),
        "failed_by_reason": dict(failed),
        "request_to_claimed_ms": percentiles(to_claimed),
        "request_to_bridged_ms": percentiles(to_bridged),
        "bridged_s": percentiles(bridged_s),
        "bridged_peak": peak,
    }


def log_problems(log: Path) -> dict[str, Any]:
    levels: Counter[str] = Counter()
    first: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        for level in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback"):
            if level in line:
                levels[level.strip()] += 1
                if len(first) < 10:
                    first.append(line[:300])
    return {"counts": dict(levels), "first": first}


def mean_of(samples: list[dict[str, Any]], key: str) -> float:
    return round(statistics.mean(s[key] for s in samples), 3) if samples else 0.0


def summarise(args: argparse.Namespace, track: Track, extra: dict[str, Any], stored: dict[str, Any],
              stats: dict[str, str], problems: dict[str, Any], uptime: str) -> dict[str, Any]:  # fmt: skip
    steady = [s for s in track.samples if args.talk + 3 <= s["t"] <= args.duration] or track.samples
    workers = len(steady[0]["worker_cores"]) if steady else 0
    refused = {k: v for k, v in track.statuses.items() if k != "200"}
    return {
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "load_before": uptime,
        "requests_sent": track.sent,
        "accepted": track.statuses.get("200", 0),
        "refused_by_status": refused,
        "accepted_ids_returned": len(track.ids),
        **extra,
        **stored,
        "http_ms": percentiles(track.latency_ms),
        "http_ms_from_send": percentiles(track.sent_latency_ms),
        "driver_late_ms": percentiles(track.late_ms),
        "steady_window_s": [steady[0]["t"], steady[-1]["t"]] if steady else [],
        "service_cores": mean_of(steady, "service_cores"),
        "service_cores_max_1s": max((s["service_cores"] for s in track.samples), default=0),
        "parent_cores": mean_of(steady, "parent_cores"),
        "worker_cores": [
            round(statistics.mean(s["worker_cores"][i] for s in steady), 3) for i in range(workers)
        ],
        "sipp_cores": mean_of(steady, "sipp_cores"),
        "driver_cores": mean_of(steady, "driver_cores"),
        "other_cores": mean_of(steady, "other_cores"),
        "service_rss_mb_max": max((s["service_rss_mb"] for s in track.samples), default=0),
        "sipp": stats,
        "service_log": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50, help="requests per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of requests")
    parser.add_argument("--talk", type=float, default=5, help="[calls] max_duration: bridged seconds")
    parser.add_argument("--ring-ms", type=int, default=100, help="SIPp rings this long before answering")
    parser.add_argument("--processes", type=int, default=1, help="[engine.sip] processes")
    parser.add_argument("--concurrency", type=int, default=0, help="[calls] concurrency (0: default)")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--connections", type=int, default=32, help="driver's HTTP connection pool")
    parser.add_argument("--http-timeout", type=float, default=30)
    parser.add_argument("--settle", type=float, default=120, help="longest wait for final states")
    parser.add_argument("--pyspy", default=None, help="START:SECONDS: py-spy record the service's parent")
    parser.add_argument("--out", default=None, help="output dir (default var/bench/system-<time>)")
    args = parser.parse_args()
    args.pyspy = tuple(float(x) for x in args.pyspy.split(":")) if args.pyspy else None
    workdir = Path(args.out or ROOT / "var" / "bench" / time.strftime("system-%Y%m%dT%H%M%S")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks below
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    max_s = args.duration + args.settle + 300
    track = Track()
    with database(args.db, workdir) as url:
        env = {
            "WEBCALLBACK_DATABASE__URL": url,
            "WEBCALLBACK_SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        names = add_accounts(env, args.accounts)
        assert names[0].startswith(USER_PREFIX)
        sipp_port = free_udp_port()
        sipp = start_sipp("trunk", sipp_port, workdir, args.ring_ms, max_s)
        service: Service | None = None
        db = sa.create_engine(url)
        try:
            http_port, sip_port = free_tcp_port(), free_udp_run(args.processes)
            config = workdir / "webcallback.toml"
            write_config(config, url, env["WEBCALLBACK_SECRETS__KEY"], http_port, sip_port, sipp_port, args)
            service = Service(config, workdir, f"http://127.0.0.1:{http_port}")
            time.sleep(1)  # the SIP workers, if any, finish starting
            extra = asyncio.run(drive(args, workdir, service, sipp, db, names, track))
            extra["service_exit"] = service.stop()
            time.sleep(1.5)  # SIPp's timewait after the last BYE
        finally:
            if service is not None:
                service.stop()
            sipp.stop(signal.SIGUSR1)
        stored = from_database(db)
        db.dispose()
    stats = sipp_stats(workdir / "sipp_trunk_stat.csv")
    summary = summarise(args, track, extra, stored, stats, log_problems(workdir / "service.log"), uptime)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
