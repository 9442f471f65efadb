"""The embedded SIP engine (RFC 3725 third-party call control on sippy). See `docs/engines.md`."""

from webcallback.config import SipSettings
from webcallback.domain import TelephonyEngine
from webcallback.engines.sip.engine import SipEngine
from webcallback.engines.sip.sharded import ShardedSipEngine, worker_count


def create_engine(settings: SipSettings) -> TelephonyEngine:
    """In this process (`processes = 1`), or over worker processes (`engine.sip.processes`)."""
    count = worker_count(settings.processes)
    if count == 1:
        return SipEngine(settings)
    return ShardedSipEngine(settings, processes=count)


__all__ = ["ShardedSipEngine", "SipEngine", "create_engine"]
