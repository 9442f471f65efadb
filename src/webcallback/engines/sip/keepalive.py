"""OPTIONS keep-alives to the trunks (`options_interval`): a trunk that stops answering is down, and
skipped by `core.trunks.TrunkSet.candidates` until it answers again. Reactor thread only.

Any final response means the trunk is there (RFC 3261 §11: OPTIONS asks what it supports), except
503 (overloaded: RFC 3261 §21.5.4 asks to send nothing for a while) and a 408, the one sippy makes
up when nothing came back (Timer B); ICMP unreachable marks it down at once.
"""

from __future__ import annotations

import logging
from typing import Any

from webcallback.core.trunks import Trunk, TrunkSet
from webcallback.engines.sip import unreachable
from webcallback.engines.sip._sippy import SipRequest, SipURL, Timeout

log = logging.getLogger(__name__)


class KeepAlive:
    def __init__(self, trunks: TrunkSet, config: dict[str, Any]) -> None:
        self.trunks, self.config = trunks, config
        self._timers: list[Any] = []

    def start(self) -> None:
        for trunk in self.trunks.trunks:
            interval = trunk.settings.options_interval
            if interval > 0:
                self.probe(trunk)
                self._timers.append(Timeout(self.probe, interval, -1, trunk))

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def probe(self, trunk: Trunk) -> None:
        request = SipRequest(method="OPTIONS", ruri=SipURL(host=trunk.host, port=trunk.port))
        call_id = str(request.getHFBody("call-id"))
        unreachable.watch(call_id, lambda why: self._mark(trunk, False, f"unreachable: {why}"))

        def answered(response: Any) -> None:
            unreachable.forget(call_id)
            code, reason = response.getSCode()
            if code < 200:
                return
            self._mark(trunk, code not in (408, 503), f"{code} {reason}")

        self.config["_sip_tm"].newTransaction(request, answered)

    def _mark(self, trunk: Trunk, up: bool, why: str) -> None:
        if trunk.up != up:
            log.warning("trunk %s is %s (OPTIONS: %s)", trunk.name, "up" if up else "down", why)
        trunk.up = up
        trunk.last_probe = why
