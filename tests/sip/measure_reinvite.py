"""Measure, from SIPp's own traces, how fast the engine relays the second leg's answer.

    PYTHONPATH=src python -m tests.sip.measure_reinvite [CALLS] [CONCURRENCY]

For each callback: B sends 200 OK (its offer) -> A receives the re-INVITE carrying it, and
B's 200 -> B receives its ACK (carrying A's answer). Both phones run on this machine, so their
trace clocks agree. Not a test: a measurement for docs/engines.md.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.sip.phones import Phone, free_udp_port, loopback_next_hop
from webcallback.config import SipSettings
from webcallback.domain import CallbackSpec
from webcallback.engines.sip import SipEngine


async def main(calls: int, concurrency: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="measure-"))
    a = Phone("uas_answer.xml", free_udp_port(), free_udp_port(), work).start(ring_ms=100, calls=calls)
    b = Phone("uas_answer.xml", free_udp_port(), free_udp_port(), work).start(ring_ms=100, calls=calls)
    engine = SipEngine(SipSettings(listen=f"127.0.0.1:{free_udp_port()}"), next_hop=loopback_next_hop)
    await engine.start()
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            spec = CallbackSpec(callback_id=f"m{i}", destination=a.number, callback=b.number,
                                caller_id_to_destination=b.number, caller_id_to_callback=a.number,
                                max_duration=0.3)  # fmt: skip
            await engine.run_callback(spec, lambda p: None)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(calls)))
    wall = time.monotonic() - t0
    await a.verdict(60), await b.verdict(60)
    await engine.stop()
    report(a, b, calls, concurrency, wall)


def report(a: Phone, b: Phone, calls: int, concurrency: int, wall: float) -> None:
    # Each B 200 is paired with the first re-INVITE on A (and ACK on B) after it: exact when
    # CONCURRENCY is 1, an approximation (a lower bound) when callbacks overlap.
    b200 = sorted(m.at for m in b.sent_status(200))
    b_ack = sorted(m.at for m in b.received("ACK"))
    a_reinv = sorted(m.at for m in a.received("INVITE") if ";tag=" in m.headers("To")[0])
    to_reinvite = [min(t for t in a_reinv if t >= s) - s for s in b200 if any(t >= s for t in a_reinv)]
    to_ack = [min(t for t in b_ack if t >= s) - s for s in b200 if any(t >= s for t in b_ack)]
    print(f"{calls} callbacks, {concurrency} at a time, {wall:.1f} s; SIPp A rc={a.rc} B rc={b.rc}")
    for name, xs in (("B 200 -> A re-INVITE", to_reinvite), ("B 200 -> B ACK", to_ack)):
        ms = sorted(x * 1000 for x in xs)
        p95 = ms[int(0.95 * (len(ms) - 1))]
        median = statistics.median(ms)
        print(f"{name}: n={len(ms)} median {median:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    asyncio.run(main(n, c))
