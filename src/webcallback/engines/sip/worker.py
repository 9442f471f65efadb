"""One SIP worker process of the sharded engine: a whole `SipEngine` on its own port.

Started by `ShardedSipEngine` as `python -m webcallback.engines.sip.worker PARENT_PID`, with its
stdin and stdout as the pipe to the parent (`wire`); the log goes to stderr. The first message is
the configuration; the worker answers "ready" once its SIP port is bound. It then runs the
callbacks it is sent and reports their progress and outcomes.

It never outlives the parent: the kernel sends it SIGTERM when the parent dies
(PR_SET_PDEATHSIG), and end of file on stdin means the same. Either way, as on a "stop" message,
it stops gracefully: its engine hangs up every call still up (ended by `shutdown`) before it
exits. SIGINT is ignored: a Ctrl-C at the terminal is the parent's to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import logging
import os
import signal
import sys
import time
from typing import Any

from webcallback import logs
from webcallback.domain import CallbackSpec, EngineError
from webcallback.engines.sip.addressing import NextHop
from webcallback.engines.sip.engine import SipEngine
from webcallback.engines.sip.wire import WorkerConfig, frame, read_frame

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
YOUNG_EVERY = 0.25  # seconds between collections of the young generation
FULL_EVERY = 600.0  # seconds between full collections
SLOW_FULL_GC_MS = 100.0


class Collector:
    """The worker's cyclic GC: small passes often instead of large ones now and then.

    A collection holds the GIL, so it stops the reactor. With the service's thresholds
    (100000, 50, 100) a young pass walks every object allocated since the previous pass that is
    still alive, i.e. most of the live calls: in one process at 150 callbacks/s those passes took
    180-290 ms, and in the workers they showed as 30-90 ms bursts in the delay between the second
    leg's answer and the re-INVITE, most of its p99 (BENCHMARKS.md). Here the young generation is
    collected every `YOUNG_EVERY` seconds and whatever survived is frozen (`gc.freeze` moves it out
    of reach of later passes, at no cost), so a pass only walks a quarter second of allocations
    (11 ms on average, 32 ms at most, in one process at 150/s). sippy's calls leave next to no
    cyclic garbage (refcounting frees them), but a cycle that outlives a young pass would stay:
    every `full_every` seconds (`engine.sip.worker_full_gc_every`) everything is unfrozen and
    collected once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, full_every: float = FULL_EVERY) -> None:
        self.loop = loop
        self.full_every = full_every
        self.last_full = loop.time()

    def start(self) -> None:
        gc.freeze()  # what start-up left (modules, sippy's tables)
        self.loop.call_later(YOUNG_EVERY, self.young)

    def young(self) -> None:
        if self.loop.time() - self.last_full >= self.full_every:
            self.full()
        else:
            gc.collect(0)
            gc.freeze()
        self.loop.call_later(YOUNG_EVERY, self.young)

    def full(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.last_full = self.loop.time()
        ms = (time.perf_counter() - started) * 1000
        # A long pass held this worker's SIP traffic (retransmissions start at 500 ms): worth a warning.
        level = logging.WARNING if ms >= SLOW_FULL_GC_MS else logging.INFO
        log.log(level, "full GC: %d unreachable objects, %.0f ms", found, ms)


def die_with_parent(parent: int) -> None:
    """SIGTERM from the kernel when the parent exits; exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)


def resolve(reference: str | None) -> NextHop | None:
    """ "package.module:function" -> the function."""
    if reference is None:
        return None
    module, _, name = reference.partition(":")
    found: NextHop = getattr(importlib.import_module(module), name)
    return found


class Worker:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.engine: SipEngine | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()

    def send(self, *message: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame(message))

    async def serve(self) -> None:
        first = await read_frame(self.reader)
        if first is None or first[0] != "config":
            return
        config: WorkerConfig = first[1]
        _configure(config)
        engine = SipEngine(config.settings, next_hop=resolve(config.next_hop))
        try:
            await engine.start()
        except EngineError as exc:
            self.send("error", str(exc))
            await self.writer.drain()
            return
        self.engine = engine
        Collector(asyncio.get_running_loop(), config.settings.worker_full_gc_every).start()
        self.send("ready")
        reading = asyncio.create_task(self._read(engine))
        await self.stopping.wait()
        reading.cancel()
        await engine.stop()  # hangs up what is still up; callbacks not ended in time fail
        if self.tasks:
            await asyncio.wait(self.tasks)
        self.send("stopped")
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def _read(self, engine: SipEngine) -> None:
        try:
            while (message := await read_frame(self.reader)) is not None:
                kind = message[0]
                if kind == "run":
                    task = asyncio.create_task(self._run(engine, message[1]))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                elif kind == "hangup":
                    await engine.hangup(message[1], message[2])
                elif kind == "stop":
                    break
        finally:
            self.stopping.set()  # "stop", or end of file: the parent is gone

    async def _run(self, engine: SipEngine, spec: CallbackSpec) -> None:
        logs.bind_callback(spec.callback_id)  # this task's own context
        try:
            outcome = await engine.run_callback(spec, lambda event: self.send("progress", event))
        except Exception as exc:  # EngineError, or a bug: the parent fails the callback with it
            self.send("failed", spec.callback_id, str(exc) or type(exc).__name__)
        else:
            self.send("outcome", spec.callback_id, outcome)


def _configure(config: WorkerConfig) -> None:
    if config.gc_threshold:
        gc.set_threshold(*config.gc_threshold)
    logs.configure(config.log, process=f"sip[{config.index}]")


async def _main(protocol_out: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(protocol_out, "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    worker = Worker(reader, writer)
    loop.add_signal_handler(signal.SIGTERM, worker.stopping.set)
    await worker.serve()
    writer.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(int(sys.argv[1]))
    # stdout is the pipe to the parent: keep it for frames only and send anything printed
    # (sippy prints some errors) to stderr.
    protocol_out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(_main(protocol_out))


if __name__ == "__main__":
    main()
