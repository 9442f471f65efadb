"""Run in a fresh process by `test_sharded`: start a two-worker engine, print the workers' pids,
then wait to be killed. The test kills this process and checks that the workers follow."""

from __future__ import annotations

import asyncio
import sys

from webcallback.config import SipSettings
from webcallback.engines.sip import ShardedSipEngine


async def main(port: int) -> None:
    engine = ShardedSipEngine(SipSettings(listen=f"127.0.0.1:{port}"), processes=2)
    await engine.start()
    pids = [w.process.pid for w in engine.workers if w.process is not None]
    print(*pids, flush=True)
    await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
