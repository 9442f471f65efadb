"""Run in a fresh process by `test_engine_api`: start, call, stop; again on the same port; again
on another. sippy's reactor is a process-wide singleton, so this needs a process of its own."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from tests.sip.phones import Phone, free_udp_port, loopback_next_hop
from webcallback.config import SipSettings
from webcallback.domain import CallbackSpec
from webcallback.engines.sip import SipEngine


async def one_call(port: int, workdir: Path, n: int) -> str:
    a = Phone("uas_answer.xml", free_udp_port(), free_udp_port(), workdir).start(ring_ms=50)
    b = Phone("uas_answer.xml", free_udp_port(), free_udp_port(), workdir).start(ring_ms=50)
    engine = SipEngine(SipSettings(listen=f"127.0.0.1:{port}"), next_hop=loopback_next_hop)
    await engine.start()
    spec = CallbackSpec(callback_id=f"restart-{n}", destination=a.number, callback=b.number,
                        caller_id_to_destination=b.number, caller_id_to_callback=a.number,
                        max_duration=0.2)  # fmt: skip
    outcome = await asyncio.wait_for(engine.run_callback(spec, lambda p: None), 10)
    await engine.stop()
    return f"{outcome.reason} {await a.verdict()} {await b.verdict()}"


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="restart-"))
    port = free_udp_port()
    for n, listen in enumerate((port, port, free_udp_port())):
        print(await one_call(listen, workdir, n), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
