"""Issue 3's benchmark: how many callbacks per second, and how many at once, the embedded SIP engine
sustains against SIPp far ends on 127.0.0.1.

The engine is driven directly, not over HTTP: an asyncio loop calls `TelephonyEngine.run_callback`
for `--rate` new callbacks per second during `--duration` seconds (a 10 ms ticker starts
floor(rate * t) callbacks by t), each one a `CallbackSpec` with `max_duration = --talk`, so the
engine itself hangs up after the talk time. Two SIPp UAS (`bench/sipp/uas_answer.xml`, unlimited
calls, `--ring-ms` before answering) play the destination (A, dialled first) and the callback
number (B). A callback counts as OK only if `run_callback` returned `completed=True`.

`--processes N` (N > 1) runs the engine as `ShardedSipEngine`: N worker processes, each a SIP engine
on its own port, this process being the parent that shards callbacks among them
(`engine.sip.processes`). "Engine" CPU and RSS are then the sum of this process and the workers.

Measured, per second, into `progress.ndjson`: started / finished / failed, callbacks bridged right
now (seen BRIDGED, not yet returned), the engine's RSS and CPU (this process alone: `parent_cores`),
the SIPp processes' CPU, and the
machine's CPU used by everything else ("other", in cores: the 2 cores are shared with other
tenants). The summary (`summary.json` and stdout) gives failures, the steady-window CPU per
callback, peak concurrency, RSS, GC pauses and click-to-bridged latency (engine clock).

Latency "B's 200 OK -> re-INVITE to A" (`--pcap`): tcpdump on loopback, then for each callback the
first 200 OK to INVITE sent from B's port -> the first in-dialog INVITE sent to A's port. The two
are matched through the From user: each callback gets a unique caller ID (`+1999` + 8 digits) on
both legs. These are kernel timestamps of packets on the wire, not engine timestamps.

    PYTHONPATH=src .venv/bin/python bench/engine_capacity.py --rate 150 --duration 60 --talk 5 \
        --pcap --out var/bench/engine-r150

Bounded: every child (SIPp, tcpdump, py-spy) runs under coreutils `timeout`, is started here and is
stopped here by its own pid. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("WCB_SRC", str(ROOT / "src")))

from webcallback.domain import (  # noqa: E402
    CallbackSpec,
    CallOutcome,
    LegState,
    ProgressEvent,
    TelephonyEngine,
)
from webcallback.lab.phones import udp_port_bound  # noqa: E402

SCENARIO = ROOT / "bench" / "sipp" / "uas_answer.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


# --- processes and /proc -----------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_ticks(pid: int) -> int:
    """utime+stime of one process (all its threads), in clock ticks; 0 once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    rest = raw[raw.rfind(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def rss_mb(pid: int | str = "self") -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # a worker that has exited
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_ticks() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


class Child:
    """A child process under `timeout -s KILL`, stopped by its own pid."""

    def __init__(self, name: str, args: list[str], workdir: Path, max_s: float) -> None:
        self.name = name
        self.out = open(workdir / f"{name}.out", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["timeout", "-s", "KILL", str(int(max_s)), *args], stdout=self.out, stderr=subprocess.STDOUT
        )
        self.pid = self.proc.pid  # `timeout` itself until the real child is known
        for _ in range(50):
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            with contextlib.suppress(OSError):
                if found := kids.read_text().split():
                    self.pid = int(found[0])
                    break
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 20) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.out.close()
        return self.proc.returncode


def free_port_pair(count: int) -> int:
    """A UDP port with the next `count - 1` ports free too (worker i listens on port + i)."""
    for _ in range(100):
        port = free_udp_port()
        free = not any(udp_port_bound("127.0.0.1", port + i) for i in range(1, count))
        if port + count <= 65536 and free:
            return port
    raise RuntimeError(f"no {count} free UDP ports in a row")


def start_sipp(name: str, port: int, workdir: Path, ring_ms: int, max_s: float) -> Child:
    if shutil.which("sipp") is None:
        sys.exit("sipp is needed: apt-get install sip-tester")
    args = [
        "sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_port()),
        "-nostdin", "-set", "RING_MS", str(ring_ms), "-l", "1000000",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000",
        "-watchdog_major_maxtriggers", "100000", "-watchdog_minor_maxtriggers", "1000000",
        "-f", "1", "-fd", "1", "-trace_stat", "-stf", str(workdir / f"sipp_{name}_stat.csv"),
        "-trace_err", "-error_file", str(workdir / f"sipp_{name}_err.log"),
    ]  # fmt: skip
    child = Child(f"sipp_{name}", args, workdir, max_s)
    deadline = time.monotonic() + 5
    while not udp_port_bound("127.0.0.1", port):
        if child.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"SIPp {name} did not bind {port}: see {workdir}/sipp_{name}.out")
        time.sleep(0.05)
    return child


def sipp_stats(path: Path) -> dict[str, str]:
    """Last row of SIPp's -trace_stat CSV (cumulative counters)."""
    try:
        rows = [line.split(";") for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    keys = ("TotalCallCreated", "SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)",
            "OutOfCallMsgs(C)", "DeadCallMsgs(C)", "CurrentCall")  # fmt: skip
    row = dict(zip(rows[0], rows[-1], strict=False))
    return {k: row.get(k, "") for k in keys}


# --- the engine ---------------------------------------------------------------------------------


def port_next_hop(number: str) -> tuple[str, int]:
    """Each number goes to the SIPp whose port its last 5 digits name."""
    return "127.0.0.1", int(number[-5:])


def make_engine(args: argparse.Namespace, listen: str) -> TelephonyEngine:
    """The embedded SIP engine: in this process, or `--processes` worker processes."""
    from webcallback.config import SipSettings

    sip = importlib.import_module("webcallback.engines.sip")
    settings = SipSettings(
        listen=listen,
        udp_workers=args.udp_workers,
        linger=args.linger,
        worker_full_gc_every=args.worker_full_gc_every,
    )
    if args.processes > 1:  # workers import the next hop: this file is on their path as a module
        engine: TelephonyEngine = sip.ShardedSipEngine(
            settings, processes=args.processes, next_hop=f"{Path(__file__).stem}:port_next_hop"
        )
    else:
        engine = sip.SipEngine(settings, next_hop=port_next_hop)
    return engine


def engine_pids(engine: TelephonyEngine) -> list[int]:
    """This process and the engine's worker processes, if it has any."""
    workers = getattr(engine, "workers", [])
    return [os.getpid(), *(w.process.pid for w in workers if w.process is not None)]


@dataclass
class Track:
    started: int = 0
    finished: int = 0
    failed: int = 0
    errors: int = 0
    bridged_now: int = 0
    bridged_peak: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    setup_s: list[float] = field(default_factory=list)  # run_callback called -> BRIDGED event
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GcWatch:
    """Pauses of the cyclic GC, from gc.callbacks."""

    pauses: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    _t0: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._t0)


async def one_callback(engine: TelephonyEngine, i: int, a_port: int, b_port: int, args: argparse.Namespace,
                       track: Track) -> None:  # fmt: skip
    tag = f"+1999{i:08d}"  # unique per callback: matches the two legs in the pcap
    spec = CallbackSpec(
        callback_id=f"cap{i}",
        destination=f"+1555{i % 100:02d}{a_port:05d}",
        callback=f"+1555{i % 100:02d}{b_port:05d}",
        caller_id_to_destination=tag,
        caller_id_to_callback=tag,
        ring_timeout=args.ring_timeout,
        max_duration=args.talk,
    )
    t0 = time.monotonic()
    bridged = False

    def on_progress(event: ProgressEvent) -> None:
        nonlocal bridged
        if event.state == LegState.BRIDGED and not bridged:
            bridged = True
            track.bridged_now += 1
            track.bridged_peak = max(track.bridged_peak, track.bridged_now)
            track.setup_s.append(time.monotonic() - t0)

    track.started += 1
    outcome: CallOutcome | None = None
    try:
        outcome = await engine.run_callback(spec, on_progress)
    except Exception as exc:
        track.errors += 1
        track.reasons[f"error: {type(exc).__name__}"] += 1
    finally:
        if bridged:
            track.bridged_now -= 1
        track.finished += 1
    if outcome is not None:
        track.reasons[outcome.reason] += 1
        if not outcome.completed:
            track.failed += 1
    else:
        track.failed += 1


async def drive(args: argparse.Namespace, workdir: Path, a: Child, b: Child, a_port: int, b_port: int,
                track: Track) -> dict[str, Any]:  # fmt: skip
    engine = make_engine(args, f"127.0.0.1:{free_port_pair(args.processes)}")
    await engine.start()
    if args.young_gc:  # the workers' GC policy, in this process (the workers always have it)
        importlib.import_module("webcallback.engines.sip.worker").Collector(
            asyncio.get_running_loop()
        ).start()
    me = os.getpid()
    pids = engine_pids(engine)
    tasks: set[asyncio.Task[None]] = set()
    stop_monitor = asyncio.Event()
    progress = open(workdir / "progress.ndjson", "w")  # noqa: SIM115 (closed below)

    async def monitor() -> None:
        def ticks() -> tuple[int, int, int, int, float, list[int]]:
            each = [proc_ticks(pid) for pid in pids]  # this process first, then the workers
            return (
                sum(each),
                proc_ticks(a.pid) + proc_ticks(b.pid),
                *machine_ticks(),
                time.monotonic(),
                each,
            )

        last = ticks()
        t_start = time.monotonic()
        while not stop_monitor.is_set():
            await asyncio.sleep(1)
            now = ticks()
            dt = now[4] - last[4]
            busy = (now[2] - last[2]) / max(now[3] - last[3], 1) * NCPU
            engine_cores = (now[0] - last[0]) / CLK_TCK / dt
            sipp_cores = (now[1] - last[1]) / CLK_TCK / dt
            sample = {
                "t": round(now[4] - t_start, 2),
                "started": track.started,
                "finished": track.finished,
                "failed": track.failed,
                "bridged_now": track.bridged_now,
                "rss_mb": round(sum(rss_mb(pid) for pid in pids), 1),
                "engine_cores": round(engine_cores, 3),
                "parent_cores": round((now[5][0] - last[5][0]) / CLK_TCK / dt, 3),
                "worker_cores": [
                    round((n - o) / CLK_TCK / dt, 3) for n, o in zip(now[5][1:], last[5][1:], strict=True)
                ],
                "sipp_cores": round(sipp_cores, 3),
                "other_cores": round(busy - engine_cores - sipp_cores, 3),
            }
            track.samples.append(sample)
            progress.write(json.dumps(sample) + "\n")
            progress.flush()
            last = now

    monitor_task = asyncio.create_task(monitor())
    if args.gc_full_every:

        async def full_gc() -> None:  # fmt: skip
            while True:
                await asyncio.sleep(args.gc_full_every)
                gc.collect()

        gc_task: asyncio.Task[None] | None = asyncio.create_task(full_gc())
    else:
        gc_task = None
    pyspy: Child | None = None
    t0 = time.monotonic()
    i = 0
    while (elapsed := time.monotonic() - t0) < args.duration:
        due = int(args.rate * elapsed)
        while i < due:
            task = asyncio.create_task(one_callback(engine, i, a_port, b_port, args, track))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if args.pyspy and pyspy is None and elapsed >= args.pyspy[0]:
            pyspy = start_pyspy(me, workdir, args.pyspy[1])
        await asyncio.sleep(0.01)
    starts_done = time.monotonic() - t0
    drain_deadline = time.monotonic() + args.talk + args.ring_timeout + 30
    while tasks and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.2)
    unfinished = len(tasks)
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    await engine.stop()
    if gc_task is not None:
        gc_task.cancel()
    stop_monitor.set()
    await monitor_task
    progress.close()
    if pyspy is not None:
        pyspy.stop(signal.SIGINT)
    return {"starts_s": round(starts_done, 2), "unfinished_cancelled": unfinished}


def start_pyspy(pid: int, workdir: Path, seconds: float) -> Child | None:
    exe = os.environ.get("PYSPY") or shutil.which("py-spy")
    if exe is None:
        print("py-spy not found; no profile", file=sys.stderr)
        return None
    args = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
            "--format", "raw", "--threads", "--gil", "-o", str(workdir / "pyspy.txt")]  # fmt: skip
    return Child("pyspy", args, workdir, seconds + 60)


# --- pcap: B's 200 OK -> re-INVITE to A ------------------------------------------------------------


def pcap_packets(path: Path) -> Iterator[tuple[float, int, int, bytes]]:
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        link = 14 if linktype == 1 else 16 if linktype == 113 else 4 if linktype == 0 else 0
        ip = frame[link:]
        if not ip or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack(">HH", ip[ihl : ihl + 4])
        yield sec + frac / (1e9 if nano else 1e6), sport, dport, ip[ihl + 8 :]


def sip_summary(payload: bytes) -> tuple[str, str, str, bool]:
    """(first line, CSeq method, From user, To has a tag)."""
    head = payload.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    cseq = headers.get("cseq", "").split()
    from_value = headers.get("from") or headers.get("f") or ""
    user = from_value.split("sip:", 1)[-1].split("@", 1)[0].split(">", 1)[0]
    to_value = headers.get("to") or headers.get("t") or ""
    return head[0], cseq[1] if len(cseq) > 1 else "", user, ";tag=" in to_value


def wire_latency(pcap: Path, a_port: int, b_port: int) -> dict[str, Any]:
    b_ok: dict[str, float] = {}
    a_reinvite: dict[str, float] = {}
    for ts, sport, dport, payload in pcap_packets(pcap):
        first, cseq_method, user, to_tag = sip_summary(payload)
        if sport == b_port and first.startswith("SIP/2.0 200") and cseq_method == "INVITE":
            b_ok.setdefault(user, ts)
        elif dport == a_port and first.startswith("INVITE ") and to_tag:
            a_reinvite.setdefault(user, ts)
    delays = sorted(
        (a_reinvite[u] - t) * 1000 for u, t in b_ok.items() if u in a_reinvite and a_reinvite[u] >= t
    )
    return {"n": len(delays), **percentiles(delays)}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": round(ordered[-1], 2)}


# --- summary ------------------------------------------------------------------------------------


def summarise(args: argparse.Namespace, track: Track, gcw: GcWatch, extra: dict[str, Any],
              stats: dict[str, dict[str, str]], wire: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    # steady window: from talk + 3 s (calls are both starting and ending) to the end of starts
    steady = [s for s in track.samples if args.talk + 3 <= s["t"] <= args.duration]
    if not steady:
        steady = track.samples
    engine_cores = statistics.mean(s["engine_cores"] for s in steady) if steady else 0.0
    rss = [s["rss_mb"] for s in track.samples]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = track.started
    return {
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "started": started,
        "completed": started - track.failed,
        "failed": track.failed,
        "failed_pct": round(100 * track.failed / max(started, 1), 3),
        "engine_errors": track.errors,
        "reasons": dict(track.reasons),
        **extra,
        "bridged_peak": track.bridged_peak,
        "steady_window_s": [steady[0]["t"], steady[-1]["t"]] if steady else [],
        "engine_cores_steady": round(engine_cores, 3),
        "engine_ms_per_callback": round(engine_cores * 1000 / args.rate, 2) if args.rate else None,
        "parent_cores_steady": round(statistics.mean(s["parent_cores"] for s in steady), 3) if steady else 0,
        "worker_cores_steady": [
            round(statistics.mean(s["worker_cores"][i] for s in steady), 3)
            for i in range(len(steady[0]["worker_cores"]))
        ]
        if steady
        else [],
        "engine_cores_max_1s": max((s["engine_cores"] for s in track.samples), default=0),
        "sipp_cores_steady": round(statistics.mean(s["sipp_cores"] for s in steady), 3) if steady else 0,
        "other_cores_steady": round(statistics.mean(s["other_cores"] for s in steady), 3) if steady else 0,
        "rss_mb_start": rss[0] if rss else None,
        "rss_mb_max": max(rss, default=0),
        "cpu_s_total": round(usage.ru_utime + usage.ru_stime, 2),
        "setup_ms_engine": percentiles([x * 1000 for x in track.setup_s]),
        "gc": {
            f"gen{g}": {
                "n": len(p),
                "total_s": round(sum(p), 3),
                "max_ms": round(max(p, default=0) * 1000, 1),
            }
            for g, p in gcw.pauses.items()
        },
        "sipp": stats,
        "wire_b200_to_a_reinvite_ms": wire,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50, help="new callbacks per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of starting callbacks")
    parser.add_argument("--talk", type=float, default=5, help="bridged seconds before the engine hangs up")
    parser.add_argument("--ring-ms", type=int, default=100, help="SIPp rings this long before answering")
    parser.add_argument("--ring-timeout", type=float, default=30)
    parser.add_argument("--processes", type=int, default=1, help="engine.sip.processes (worker processes)")
    parser.add_argument("--udp-workers", type=int, default=1, help="engine.sip.udp_workers")
    parser.add_argument("--linger", type=float, default=32.0, help="engine.sip.linger (UA godead)")
    parser.add_argument("--gc-threshold", default=None, help="e.g. 100000,50,100 (gc.set_threshold)")
    parser.add_argument("--gc-full-every", type=float, default=0, help="explicit gc.collect() every S s")
    parser.add_argument(
        "--worker-full-gc-every", type=float, default=600.0, help="engine.sip.worker_full_gc_every (s)"
    )
    parser.add_argument("--young-gc", action="store_true", help="the SIP workers' GC policy in this process")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (s)")
    parser.add_argument("--pcap", action="store_true", help="tcpdump loopback for the wire latency")
    parser.add_argument("--pyspy", default=None, help="START:SECONDS, e.g. 10:20 (py-spy record)")
    parser.add_argument("--uvloop", action="store_true", help="run the driver's asyncio loop on uvloop")
    parser.add_argument("--out", default=None, help="output dir (default var/bench/engine-<time>)")
    args = parser.parse_args()
    args.pyspy = tuple(float(x) for x in args.pyspy.split(":")) if args.pyspy else None
    workdir = Path(args.out or ROOT / "var" / "bench" / time.strftime("engine-%Y%m%dT%H%M%S"))
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks below
    gcw = GcWatch()
    gc.callbacks.append(gcw)
    if args.gc_threshold:
        gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    max_s = args.duration + args.talk + args.ring_timeout + 120
    a_port, b_port = free_udp_port(), free_udp_port()
    children: list[Child] = []
    track = Track()
    try:
        a = start_sipp("A", a_port, workdir, args.ring_ms, max_s)
        children.append(a)
        b = start_sipp("B", b_port, workdir, args.ring_ms, max_s)
        children.append(b)
        tcpdump = None
        if args.pcap:
            filt = f"udp and (port {a_port} or port {b_port})"
            tcpdump = Child("tcpdump", ["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w",
                                        str(workdir / "sip.pcap"), filt], workdir, max_s)  # fmt: skip
            children.append(tcpdump)
            time.sleep(1)
        if args.uvloop:
            import uvloop

            extra = uvloop.run(drive(args, workdir, a, b, a_port, b_port, track))
        else:
            extra = asyncio.run(drive(args, workdir, a, b, a_port, b_port, track))
        time.sleep(1.5)  # SIPp's timewait after the last BYE
    finally:
        for child in reversed(children):
            child.stop(signal.SIGUSR1 if child.name.startswith("sipp") else signal.SIGINT)
    # cyclic garbage left by the run (all of it, with --gc-threshold 0): what refcounting did not free
    extra["gc_unreachable_at_end"] = gc.collect()
    stats = {"A": sipp_stats(workdir / "sipp_A_stat.csv"), "B": sipp_stats(workdir / "sipp_B_stat.csv")}
    wire = wire_latency(workdir / "sip.pcap", a_port, b_port) if args.pcap else None
    summary = summarise(args, track, gcw, extra, stats, wire)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
