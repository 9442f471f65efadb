"""The embedded SIP engine: `TelephonyEngine` on sippy, for asyncio callers.

asyncio -> sippy: `Reactor.call` (`ED2.callFromThread`). sippy -> asyncio: the driver's sink uses
`loop.call_soon_threadsafe`, so `on_progress` runs in the event loop, never in the SIP thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from webcallback.config import SipSettings
from webcallback.core import CallbackSession, Flow
from webcallback.core.session_timer import MIN_SE_FLOOR, TimerPolicy
from webcallback.core.trunks import TrunkSet
from webcallback.domain import (
    CallbackSpec,
    CallOutcome,
    EndedBy,
    EngineError,
    ProgressCallback,
    ProgressEvent,
)
from webcallback.engines.sip import reactor as reactor_mod
from webcallback.engines.sip.addressing import HostPort, NextHop, parse_hostport, parse_trunk, trunk_next_hop
from webcallback.engines.sip.driver import CallDriver, Dialling, Sink
from webcallback.engines.sip.keepalive import KeepAlive
from webcallback.engines.sip.trunk_config import build_trunks

log = logging.getLogger(__name__)

_STOP_GRACE = 3.0  # seconds stop() waits for hung-up callbacks to report their outcome


def _timer_policy(settings: SipSettings) -> TimerPolicy | None:
    """RFC 4028 session timers from `engine.sip.session_expires` / `session_min_se` (0: off)."""
    if settings.session_expires == 0:
        return None
    try:
        policy = TimerPolicy(expires=settings.session_expires, min_se=settings.session_min_se)
    except ValueError:
        raise EngineError(
            "engine.sip.session_expires must be 0 or at least engine.sip.session_min_se, which must be "
            f"at least 1 (got {settings.session_expires} and {settings.session_min_se})"
        ) from None
    if policy.min_se < MIN_SE_FLOOR:
        log.warning("engine.sip.session_min_se %d is below RFC 4028's 90 s: for tests only", policy.min_se)
    return policy


def epoch_monotonic() -> Callable[[], float]:
    """A clock that never jumps but reads like `time.time()`: durations and timestamps agree."""
    offset = time.time() - time.monotonic()
    return lambda: offset + time.monotonic()


class SipEngine:
    """Places callbacks over SIP through `settings.trunk` (see `docs/engines.md`).

    `next_hop` replaces the trunk for labs and tests: it maps each number to the address its INVITE
    is sent to (the Request-URI host follows it).
    """

    def __init__(self, settings: SipSettings, *, next_hop: NextHop | None = None) -> None:
        self.settings = settings
        self.listen = parse_hostport(settings.listen, 5060, "engine.sip.listen", any_port=True)
        if self.listen.host in ("0.0.0.0", "::"):
            # the listen address is also our Via and Contact: the far end must reach it there
            raise EngineError("engine.sip.listen must be an address the trunk can reach, not a wildcard")
        self.timers = _timer_policy(settings)
        self.trunk = parse_trunk(settings.trunk)
        # several trunks (or the one `trunk` as one entry), unless a lab/test `next_hop` rules
        self.trunks = None if next_hop is not None else TrunkSet(build_trunks(settings))
        if self.trunks is not None:
            self.trunk = HostPort(self.trunks.trunks[0].host, self.trunks.trunks[0].port)
        self._next_hop = next_hop or trunk_next_hop(self.trunk)
        self._from_domain = settings.from_domain or (None if next_hop else self.trunk.host)
        self._reactor: reactor_mod.Reactor | None = None
        self._dialling: Dialling | None = None
        self._keepalive: KeepAlive | None = None
        self._running: dict[str, tuple[CallDriver, asyncio.Future[CallOutcome]]] = {}

    async def start(self) -> None:
        if self._reactor is not None:
            return
        loop = asyncio.get_running_loop()
        settings = self.settings
        acquire = functools.partial(
            reactor_mod.acquire, udp_workers=settings.udp_workers, linger=settings.linger
        )
        reactor = await loop.run_in_executor(None, acquire, self.listen.host, self.listen.port)
        password = self.settings.password.reveal() if self.settings.password else None
        self._dialling = Dialling(reactor.config, self._next_hop, self.settings.username, password,
                                  self._from_domain, epoch_monotonic(), self.trunks,
                                  settings.trunk_silence)  # fmt: skip
        self._reactor = reactor
        if self.trunks is not None:
            self._keepalive = KeepAlive(self.trunks, reactor.config)
            reactor.call(self._keepalive.start)
        log.info("SIP engine started: trunk %s, flow %s", self.trunk, self.settings.flow)

    async def stop(self) -> None:
        """Hang up whatever is still running (ended by `shutdown`), then let go of the reactor."""
        reactor, self._reactor = self._reactor, None
        if reactor is None:
            return
        if self._keepalive is not None:
            reactor.call(self._keepalive.stop)
            self._keepalive = None
        futures = [fut for _, fut in self._running.values()]
        for driver, _ in self._running.values():
            reactor.call(driver.hangup, EndedBy.SHUTDOWN)
        if futures:
            await asyncio.wait(futures, timeout=_STOP_GRACE)
        for fut in futures:  # no outcome in time: do not leave callers waiting on a dead reactor
            if not fut.done():
                fut.set_exception(EngineError("the SIP engine stopped before the callback ended"))
        await asyncio.get_running_loop().run_in_executor(None, reactor_mod.release, reactor)

    async def run_callback(self, spec: CallbackSpec, on_progress: ProgressCallback) -> CallOutcome:
        reactor, dialling = self._reactor, self._dialling
        if reactor is None or dialling is None:
            raise EngineError("the SIP engine is not started")
        if spec.callback_id in self._running:
            raise EngineError(f"callback {spec.callback_id} is already running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CallOutcome] = loop.create_future()
        session = CallbackSession(spec, flow=Flow(self.settings.flow), local_address=self.listen.host,
                                  timers=self.timers)  # fmt: skip
        driver = CallDriver(session, dialling, self._sink(loop, future, on_progress, spec.callback_id))
        self._running[spec.callback_id] = (driver, future)
        reactor.call(driver.start)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            reactor.call(driver.hangup, EndedBy.LOCAL)
            raise
        finally:
            self._running.pop(spec.callback_id, None)

    async def hangup(self, callback_id: str, ended_by: EndedBy = EndedBy.LOCAL) -> bool:
        entry = self._running.get(callback_id)
        if entry is None or self._reactor is None:
            return False
        self._reactor.call(entry[0].hangup, ended_by)
        return True

    def _sink(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[CallOutcome],
              on_progress: ProgressCallback, callback_id: str) -> Sink:  # fmt: skip
        def progress(event: ProgressEvent) -> None:
            try:
                on_progress(event)
            except Exception:  # the dispatcher's bug must not kill the call
                log.exception("on_progress failed", extra={"callback_id": callback_id})

        def settle(result: CallOutcome | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(EngineError(f"SIP engine failed: {error}"))
            elif result is not None:
                log.info("SIP legs finished: %s, bridged %.1f s", result.reason, result.bridged_s,
                         extra={"callback_id": callback_id})  # fmt: skip
                future.set_result(result)

        def hop(fn: Callable[..., None], *args: object) -> None:
            loop.call_soon_threadsafe(fn, *args)

        return Sink(
            progress=lambda p: hop(progress, p),
            finished=lambda outcome: hop(settle, outcome, None),
            broken=lambda exc: hop(settle, None, exc),
        )
