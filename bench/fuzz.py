"""A long fuzz run against `webcallback run` in a subprocess: the named attacks plus random
requests in all four formats (see tests/security/fuzzcases.py), over real HTTP.

    python bench/fuzz.py --cases 100000 [--seed 1] [--threads 4] [--db URL | --postgres]

Reports cases sent, responses by status class, 5xx, crashes (the server process gone, refused
connections, or an unexpected-error line in its log) and the server's RSS at start, every 10% and
at the end. Exit status 1 if there was any 5xx or crash. The figures go in docs/security.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.security.fuzzcases import PASSWORD, USER, Case, corpus, random_case  # noqa: E402

# Limits and lockouts off so that requests reach the deep paths (one client address sends them
# all); billing off so that an accepted request becomes a callback row (billing with no rate deck
# would refuse every number before admission).
LIMITS_OFF = {
    "WEBCALLBACK_AUTH__ALLOW_PASSWORD_OVER_HTTP": "true",
    "WEBCALLBACK_BILLING__ENABLED": "false",
    "WEBCALLBACK_SECURITY__LOCKOUT__MAX_FAILURES_PER_USER": "0",
    "WEBCALLBACK_SECURITY__LOCKOUT__MAX_FAILURES_PER_IP": "0",
    "WEBCALLBACK_SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_USER": "0",
    "WEBCALLBACK_SECURITY__LIMITS__REQUESTS_PER_MINUTE_PER_IP": "0",
    "WEBCALLBACK_SECURITY__LIMITS__CONCURRENT_CALLBACKS_PER_USER": "0",
    "WEBCALLBACK_SECURITY__LIMITS__CALLBACKS_PER_DAY": "0",
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path, db_url: str) -> tuple[subprocess.Popen[bytes], str, Path, dict[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "WEBCALLBACK_SERVER__LISTEN": f"127.0.0.1:{port}",
        "WEBCALLBACK_DATABASE__URL": db_url,
        "WEBCALLBACK_SECRETS__KEY_FILE": str(tmp / "secret.key"),
        "WEBCALLBACK_ENGINE__KIND": "none",
        "WEBCALLBACK_NUMBERS__GEOIP": "false",
        **LIMITS_OFF,
    }
    cli = [sys.executable, "-m", "webcallback"]
    subprocess.run(
        [
            *cli,
            "account",
            "add",
            USER,
            "--password",
            PASSWORD,
            "--credit",
            "1000000",
            "--callback-number",
            "+12025550199",
        ],
        env=env,
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    log = tmp / "server.log"
    proc = subprocess.Popen([*cli, "run"], env=env, cwd=tmp, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return proc, url, log, env
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def run(cases: int, seed: int, threads: int, db_url: str | None) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="wcb-fuzz-"))
    proc, url, log, _env = start_server(tmp, db_url or f"sqlite:///{tmp / 'fuzz.db'}")
    named = corpus()
    statuses: Counter[str] = Counter()
    five_xx: list[str] = []
    transport_errors: Counter[str] = Counter()
    lock = threading.Lock()
    sent = 0
    rss = {"start": rss_kib(proc.pid)}
    checkpoints = {cases * k // 10: f"{k * 10}%" for k in range(1, 11)}

    def worker(index: int) -> None:
        nonlocal sent
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=url, timeout=30) as http:
            while True:
                with lock:
                    if sent >= cases:
                        return
                    n = sent
                    sent += 1
                    mark = checkpoints.get(sent)
                case: Case = named[n] if n < len(named) else random_case(rng)
                try:
                    reply = http.request(case.method, case.target, headers=case.headers, content=case.body)
                    key = f"{reply.status_code // 100}xx"
                    if reply.status_code == 200 and case.target.startswith("/webcallback"):
                        key = "200 callback"
                    if reply.status_code >= 500:
                        with lock:
                            five_xx.append(
                                f"{case.name} {case.method} {case.target[:80]} -> {reply.status_code}"
                            )
                except httpx.LocalProtocolError:
                    key = "client-refused"  # httpx would not send it (e.g. an illegal header)
                except httpx.TransportError as exc:
                    key = "transport-error"
                    with lock:
                        transport_errors[type(exc).__name__] += 1
                with lock:
                    statuses[key] += 1
                    if mark:
                        rss[mark] = rss_kib(proc.pid)

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    alive = proc.poll() is None
    rss["end"] = rss_kib(proc.pid) if alive else 0
    healthy = alive and httpx.get(url + "/healthz").status_code == 200
    proc.terminate()
    proc.wait(30)
    text = log.read_text(errors="replace")
    crashes = (0 if alive else 1) + text.count("Traceback") + sum(transport_errors.values())
    return {
        "cases": sent,
        "seconds": round(elapsed, 1),
        "per_second": round(sent / elapsed),
        "statuses": dict(sorted(statuses.items())),
        "five_xx": len(five_xx),
        "five_xx_examples": five_xx[:10],
        "transport_errors": dict(transport_errors),
        "crashes": crashes,
        "server_alive_and_healthy": healthy,
        "rss_kib": rss,
        "named_attacks": len(named),
        "database": (db_url or "sqlite").split(":", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL (tests/pgserver)"
    )
    args = parser.parse_args()
    if args.postgres:
        from tests.pgserver import postgres_server

        with postgres_server() as server:
            result = run(args.cases, args.seed, args.threads, server.create_database())
    else:
        result = run(args.cases, args.seed, args.threads, args.db)
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["five_xx"] or result["crashes"] else 0)


if __name__ == "__main__":
    main()
