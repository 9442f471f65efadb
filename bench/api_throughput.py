"""Issue 2's benchmark: accepted web-callback requests per second next to a raw-ASGI hello.

For each (database, server, workers) it:
1. creates a fresh database (a SQLite file in a temp dir, or a database on a PostgreSQL server that
   `tests/pgserver.py` starts), migrates it and adds one real account with an encrypted password;
2. starts the server on 127.0.0.1 serving `bench/api_app.py`: the real app plus `/hello`, a raw-ASGI
   endpoint that drains the same POST body and answers a fixed JSON;
3. checks one signed request is accepted (200 + an id) and its replay refused;
4. runs wrk (`bench/wrk_callback.lua`: every request a JSON POST with a fresh nonce and
   hash = sha1(nonce + password) via libcrypto) alternately against `/hello` and the real endpoint,
   `--runs` pairs of `--duration` seconds each, after a warm-up;
5. after the server stops, counts the callbacks rows and checks they equal wrk's 2xx answers.

Per run it records req/s, p50/p99 latency, non-2xx, the CPU of the server's process tree and of
wrk, and the CPU that other processes used meanwhile ("foreign", in cores): the machine has 2 cores
shared by everything. Before each run it waits (up to --wait-idle s) for the machine to be idle.
Results: one JSON object per run in --out, and a summary table (medians, ratio) on stdout.

No wall-clock assertions anywhere: this is a measurement tool, not a test.

    PYTHONPATH=src .venv/bin/python bench/api_throughput.py --servers uvicorn,granian \
        --workers 1,2 --db sqlite,postgres --runs 5 --duration 10
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [os.environ.get("WCB_SRC", str(ROOT / "src")), str(ROOT)]

from webcallback.billing.rating import Rate  # noqa: E402
from webcallback.config import load_settings  # noqa: E402
from webcallback.service.container import build_services  # noqa: E402
from webcallback.store.billing import RateStore  # noqa: E402
from webcallback.store.schema import accounts as accounts_table  # noqa: E402

VENV_BIN = Path(sys.executable).parent
USER, PASSWORD = "benchuser1", "bench-Secret-42"
USER_PREFIX = "benchuser"  # with --accounts N: benchuser0 ... benchuser<N-1>, USER among them
TARGET, CALLBACK = "+16502530000", "+12025550143"  # numbers the default policy admits
TARGET_PREFIX = "+1650253"  # + 4 digits varying per request
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class RunResult:
    db: str
    server: str
    workers: int
    endpoint: str  # "hello" or "callback"
    run: int
    rps: float
    requests: int
    non2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    server_cores: float  # CPU of the server's process tree, in cores, over the run
    server_us_per_req: float  # server CPU per answered request: less sensitive to other tenants
    wrk_cores: float
    foreign_cores: float  # CPU of everything else on the machine
    wrk_us_per_req: float


# --- machine accounting ------------------------------------------------------------------------


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def tree_ticks(root_pid: int) -> int:
    """utime+stime of root_pid and all its descendants (threads included)."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        pid = int(entry.name)
        parent[pid] = int(rest[1])
        ticks[pid] = int(rest[11]) + int(rest[12])
    total, todo = 0, [root_pid]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def wait_idle(max_wait: float, threshold: float = 0.15) -> float:
    """Wait until the whole machine used < threshold cores over 2 s; returns the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy_ticks()
        time.sleep(2)
        b1, t1 = machine_busy_ticks()
        cores = (b1 - b0) / max(t1 - t0, 1) * (os.cpu_count() or 1)
        if cores < threshold or time.monotonic() > deadline:
            return cores


# --- database and server -----------------------------------------------------------------------


def settings_env(db_url: str, accounts: int = 1) -> dict[str, str]:
    """The production path: billing on (the account has a plan), every abuse control on, with
    limits one client could not reach in a run, so each request still pays for its checks.

    With many accounts (`accounts` > 1) the daily cap and duplicate suppression keep their
    defaults (100 callbacks per account per day, 10 s), as a provider runs them: the load spreads
    over the accounts and every destination is new. With one account they cannot (one account
    placing every callback of the run), so they are set out of reach / off as before."""
    env = {
        "WEBCALLBACK_DATABASE__URL": db_url,
        "WEBCALLBACK_SECRETS__KEY": base64.b64encode(os.urandom(32)).decode(),
        "WEBCALLBACK_ENGINE__KIND": "none",
        "WEBCALLBACK_SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_USER": "100000000",
        "WEBCALLBACK_SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_IP": "100000000",
        # Off: callbacks stay queued here (no engine), and slots are tried one by one up to the limit.
        "WEBCALLBACK_SECURITY__LIMITS__CONCURRENT_CALLBACKS_PER_USER": "0",
        "WEBCALLBACK_SECURITY__LIMITS__CALLBACKS_PER_DAY": "100000000",
        # Off: wrk repeats number pairs within the window, and a suppressed duplicate answers 200
        # with the earlier id and stores no row, which the harness's row count would call a loss.
        "WEBCALLBACK_SECURITY__LIMITS__DUPLICATE_WINDOW": "0",
    }
    if accounts > 1:
        del env["WEBCALLBACK_SECURITY__LIMITS__CALLBACKS_PER_DAY"]
        del env["WEBCALLBACK_SECURITY__LIMITS__DUPLICATE_WINDOW"]
    return env


def usernames(accounts: int) -> list[str]:
    return [USER] if accounts <= 1 else [f"{USER_PREFIX}{i}" for i in range(accounts)]


def prepare_database(env: dict[str, str], accounts: int = 1) -> None:
    """Migrate, add the accounts (each password encrypted on its own, as `account add` does) and
    a one-line rate plan."""
    settings = load_settings(path=os.devnull, environ=env)
    services = build_services(settings, migrate=True)
    try:
        rows = []
        now = datetime.now(UTC)
        for name in usernames(accounts):
            blob, kid = services.cipher.encrypt(name, PASSWORD)
            rows.append(
                dict(
                    username=name, password_enc=blob, key_id=kid, callback_number=CALLBACK, region="US",
                    balance=Decimal(10**9), reserved=Decimal(0), currency="USD", enabled=True, plan=None,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        with services.db.engine.begin() as conn:
            conn.execute(accounts_table.insert(), rows)
        RateStore(services.db).import_plan(
            "default", "USD", [Rate(prefix="1", price_per_minute=Decimal("0.01"))]
        )
    finally:
        services.close()


def count_callbacks(env: dict[str, str]) -> int:
    settings = load_settings(path=os.devnull, environ=env)
    services = build_services(settings, migrate=False)
    try:
        return len(services.callbacks.recent(limit=10**9))
    finally:
        services.close()


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'webcallback.db'}"
        return
    from tests.pgserver import postgres_server

    with postgres_server() as server:
        yield server.create_database()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(server: str, workers: int, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            str(VENV_BIN / "python"), "-m", "uvicorn", "api_app:create", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning", "--lifespan", "on", "--workers", str(workers),
        ]  # fmt: skip
    if server == "granian":
        return [
            str(VENV_BIN / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--no-ws", "--no-access-log", "--log-level", "warning",
            "--workers", str(workers), "--workers-kill-timeout", "3", "api_app:create",
        ]  # fmt: skip
    raise ValueError(server)


@contextlib.contextmanager
def running_server(
    server: str, workers: int, env: dict[str, str], log: Path, src: Path
) -> Iterator[tuple[int, str]]:
    port = free_port()
    full_env = {**os.environ, **env, "PYTHONPATH": f"{src}:{BENCH}"}
    with open(log, "ab") as log_fh:
        proc = subprocess.Popen(
            server_command(server, workers, port),
            cwd=BENCH,
            env=full_env,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server} did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(0.5 * workers)  # let every worker finish starting
        yield proc.pid, base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sanity_check(base: str) -> None:
    """One signed request is accepted; its replay is refused. Raises if not."""
    nonce = "sanity" + secrets.token_hex(8)
    digest = hashlib.sha1((nonce + PASSWORD).encode()).hexdigest()
    body = {
        "username": USER,
        "nonce": nonce,
        "hash": digest,
        "targetNumber": TARGET,
        "callbackNumber": CALLBACK,
    }
    first = httpx.post(base + "/webcallback", json=body, timeout=5)
    if first.status_code != 200 or "id" not in first.json():
        raise RuntimeError(f"signed request not accepted: {first.status_code} {first.text}")
    replay = httpx.post(base + "/webcallback", json=body, timeout=5)
    if replay.status_code == 200:
        raise RuntimeError("replayed nonce was accepted")


# --- wrk ----------------------------------------------------------------------------------------


_wrk_runs = itertools.count()
RUN_SPACING = 500_000  # destinations per run before the next run's range: 16 runs within 8 million


def run_wrk(
    base: str,
    path: str,
    duration: float,
    connections: int,
    threads: int,
    *,
    accounts: int = 1,
    target_digits: int = 4,
) -> tuple[dict[str, Any], float]:
    env = {
        **os.environ,
        "WCB_USERS": str(accounts),
        "WCB_USER_PREFIX": USER_PREFIX,
        "WCB_TARGET_DIGITS": str(target_digits),
        # Every run dials numbers no earlier run dialled: a repeat within the duplicate window
        # would be answered with the earlier callback's id and store no row.
        "WCB_TARGET_OFFSET": str(next(_wrk_runs) % 16 * RUN_SPACING),
        "WCB_PATH": path,
        "WCB_USER": USER,
        "WCB_PASSWORD": PASSWORD,
        "WCB_TARGET_PREFIX": TARGET_PREFIX if target_digits == 4 else TARGET_PREFIX[:5],
        "WCB_CALLBACK": CALLBACK,
        "WCB_RUN": secrets.token_hex(4),
    }
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{round(duration)}s", "--timeout", "5s",
        "-s", str(BENCH / "wrk_callback.lua"), base + path,
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(out), wrk_cpu


def parse_wrk(out: str) -> dict[str, Any]:
    def grab(pattern: str, default: float = 0.0) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else default

    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": grab(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(grab(r"WCB_REQUESTS (\d+)")),
        "non2xx": int(grab(r"WCB_NON2XX (\d+)")),
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "p50_ms": grab(r"WCB_LAT_P50_US (\d+)") / 1000,
        "p99_ms": grab(r"WCB_LAT_P99_US (\d+)") / 1000,
        "raw": out,
    }


def measured_run(
    base: str, server_pid: int, path: str, args: argparse.Namespace
) -> tuple[dict[str, Any], float, float, float, float]:
    s0 = tree_ticks(server_pid)
    b0, t0 = machine_busy_ticks()
    w0 = time.monotonic()
    result, wrk_cpu = run_wrk(
        base,
        path,
        args.duration,
        args.connections,
        args.threads,
        accounts=getattr(args, "accounts", 1),
        target_digits=getattr(args, "target_digits", 4),
    )
    elapsed = time.monotonic() - w0
    b1, t1 = machine_busy_ticks()
    s1 = tree_ticks(server_pid)
    ncpu = os.cpu_count() or 1
    busy_cores = (b1 - b0) / max(t1 - t0, 1) * ncpu
    server_cores = (s1 - s0) / CLK_TCK / elapsed
    wrk_cores = wrk_cpu / elapsed
    foreign = busy_cores - server_cores - wrk_cores
    return result, server_cores, wrk_cores, foreign, wrk_cpu


# --- one configuration --------------------------------------------------------------------------


def bench_config(db: str, server: str, workers: int, args: argparse.Namespace, out: Any) -> list[RunResult]:
    results: list[RunResult] = []
    workdir = Path(tempfile.mkdtemp(prefix="wcb-bench-"))
    try:
        with database(db, workdir) as url:
            env = settings_env(url, args.accounts)
            prepare_database(env, args.accounts)
            accepted = 0
            log = workdir / "server.log"
            with running_server(server, workers, env, log, Path(args.src)) as (pid, base):
                sanity_check(base)
                accepted += 1
                load = {"accounts": args.accounts, "target_digits": args.target_digits}
                for path in ("/hello", "/webcallback"):  # warm-up, not recorded
                    warm, _ = run_wrk(base, path, args.warmup, args.connections, args.threads, **load)
                    if path == "/webcallback":
                        accepted += warm["requests"] - warm["non2xx"] - warm["socket_errors"]
                for run in range(args.runs):
                    order = ["/hello", "/webcallback"] if run % 2 == 0 else ["/webcallback", "/hello"]
                    for path in order:
                        wait_idle(args.wait_idle)
                        res, srv, wrk, foreign, wrk_cpu = measured_run(base, pid, path, args)
                        if path == "/webcallback":
                            accepted += res["requests"] - res["non2xx"]
                        if res["non2xx"] or res["socket_errors"]:
                            print(f"  warning: non2xx={res['non2xx']} socket_errors={res['socket_errors']}")
                        rr = RunResult(
                            db=db,
                            server=server,
                            workers=workers,
                            endpoint="hello" if path == "/hello" else "callback",
                            run=run,
                            rps=res["rps"],
                            requests=res["requests"],
                            non2xx=res["non2xx"],
                            socket_errors=res["socket_errors"],
                            p50_ms=res["p50_ms"],
                            p99_ms=res["p99_ms"],
                            server_cores=round(srv, 3),
                            server_us_per_req=round(srv * 1e6 / max(res["rps"], 1), 1),
                            wrk_cores=round(wrk, 3),
                            foreign_cores=round(foreign, 3),
                            wrk_us_per_req=round(wrk_cpu / max(res["requests"], 1) * 1e6, 2),
                        )
                        results.append(rr)
                        out.write(json.dumps({**asdict(rr), "label": args.label}) + "\n")
                        out.flush()
                        print(
                            f"  {db:8} {server:8} w={workers} {rr.endpoint:8} run {run}: {rr.rps:9.0f} req/s"
                            f"  p50 {rr.p50_ms:6.2f} ms  p99 {rr.p99_ms:6.2f} ms  server {srv:.2f} cores"
                            f"  wrk {wrk:.2f}  foreign {foreign:+.2f}",
                            flush=True,
                        )
            stored = count_callbacks(env)
            # wrk may have had requests in flight when it stopped; those were served but not counted.
            print(f"  callbacks stored: {stored}; 2xx answers counted by wrk: {accepted}")
            if stored < accepted:
                raise RuntimeError(f"only {stored} callbacks stored for {accepted} accepted answers")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def summarise(results: list[RunResult]) -> str:
    lines = [
        "| db | server | workers | hello req/s (median [min–max]) | hello p99 ms "
        "| callback req/s (median [min–max]) | callback p99 ms "
        "| ratio of medians | median of per-pair ratios | server CPU µs/req hello / callback |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    keys = sorted({(r.db, r.server, r.workers) for r in results}, key=lambda k: (k[0], k[1], k[2]))
    for db, server, workers in keys:
        sel = [r for r in results if (r.db, r.server, r.workers) == (db, server, workers)]
        hello = [r for r in sel if r.endpoint == "hello"]
        cb = [r for r in sel if r.endpoint == "callback"]
        if not hello or not cb:
            continue
        h_rps = [r.rps for r in hello]
        c_rps = [r.rps for r in cb]
        pairs = [c.rps / h.rps for h in hello for c in cb if c.run == h.run and h.rps]
        lines.append(
            f"| {db} | {server} | {workers}"
            f" | {statistics.median(h_rps):,.0f} [{min(h_rps):,.0f}–{max(h_rps):,.0f}]"
            f" | {statistics.median(r.p99_ms for r in hello):.1f}"
            f" | {statistics.median(c_rps):,.0f} [{min(c_rps):,.0f}–{max(c_rps):,.0f}]"
            f" | {statistics.median(r.p99_ms for r in cb):.1f}"
            f" | {statistics.median(c_rps) / statistics.median(h_rps):.2f}"
            f" | {statistics.median(pairs):.2f}"
            f" | {statistics.median(r.server_us_per_req for r in hello):.0f}"
            f" / {statistics.median(r.server_us_per_req for r in cb):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--workers", default="1")
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--runs", type=int, default=3, help="pairs of (hello, callback) runs per config")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--accounts", type=int, default=5000, help="accounts the load spreads over (1: one)"
    )
    parser.add_argument(
        "--target-digits", type=int, default=7, choices=(4, 7), help="varying digits of the destination"
    )
    parser.add_argument("--wait-idle", type=float, default=30, help="max seconds to wait for an idle machine")
    parser.add_argument("--src", default=str(ROOT / "src"), help="source tree the server runs (A/B runs)")
    parser.add_argument("--label", default="", help="tag stored with every result row")
    parser.add_argument("--out", default=None, help="JSON-lines file (default var/bench/api-<time>.jsonl)")
    parser.add_argument("--summary", default=None, help="summarise an existing --out file and exit")
    args = parser.parse_args()
    if args.summary:
        rows = []
        for line in Path(args.summary).read_text().splitlines():
            if line and (data := json.loads(line)).get("label", "") == args.label:
                data.pop("label", None)
                rows.append(RunResult(**data))
        print(summarise(rows))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server is stopped on kill
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    out_path = Path(args.out or ROOT / "var" / "bench" / time.strftime("api-%Y%m%dT%H%M%S.jsonl"))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    with open(out_path, "a") as out:
        for db in args.db.split(","):
            for server in args.servers.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    print(f"== {db} / {server} / {workers} worker(s)", flush=True)
                    results += bench_config(db, server, workers, args, out)
    print(f"\nresults: {out_path}\n")
    print(summarise(results))


if __name__ == "__main__":
    main()
