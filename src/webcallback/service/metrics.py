"""Prometheus metrics: one registry per service, observed at three seams.

- HTTP: `web/metrics.py`'s ASGI middleware calls `http_request` once per request;
- calls: the dispatcher calls `claimed` when it takes a callback, and its recorder calls
  `progress` / `finished` where it stores a leg's step and the final state;
- the store: `Database.run` hands every store call's duration to `store_call`;
- and at scrape time the store's queue depth and reserved credit (`StoreGauges`) and the SIP
  engine's live workers are read.

Several SIP processes (`engine.sip.processes` > 1): the workers report every leg step and outcome
to the service process over their pipes, and the dispatcher records them there, so every
observation is made in one process and one registry holds all of it. prometheus-client's
multiprocess mode (a shared directory of mmap files, set up before import, no gauges computed at
scrape time, files of dead workers to clean up) would buy nothing here. Names start with
`webcallback_`; counters end with `_total` (the client adds it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from webcallback.config import Settings
from webcallback.domain import CallOutcome, LegState, ProgressEvent
from webcallback.store.callbacks import Callback
from webcallback.store.gauges import StoreGauges

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Call set-up and post-dial delay are sub-second to tens of seconds (ringing); talk time
# runs to the hour; HTTP and store calls are milliseconds.
SETUP_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60)
TALK_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FAST_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

_OPEN_LEG = (LegState.TRYING, LegState.RINGING, LegState.ANSWERED, LegState.BRIDGED)


def trunk_label(settings: Settings) -> str:
    """The trunk's host (not its URI: no user part, no parameters); `lab` for the phone lab."""
    sip = settings.engine.sip
    trunk = sip.trunk or (sip.trunks[0].uri if sip.trunks else None)  # several: labelled by the first
    if not trunk:
        return "lab"
    rest = trunk.split(":", 1)[-1]
    return urlsplit("//" + rest.rpartition("@")[2]).hostname or "unknown"


class Metrics:
    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._trunk = trunk_label(settings)
        r = self.registry
        self.accepted = Counter("webcallback_callbacks_accepted", "Callbacks accepted.", registry=r)
        self.refused = Counter(
            "webcallback_callbacks_refused", "Callback requests refused, by error id.", ["reason"], registry=r
        )
        self.finished_total = Counter(
            "webcallback_callbacks_finished",
            "Callbacks that reached a final state, by state and reason.",
            ["state", "reason"],
            registry=r,
        )
        self.legs = Counter(
            "webcallback_legs",
            "Legs dialled, by role, last SIP code (none: no answer at all) and trunk.",
            ["leg", "sip_code", "trunk"],
            registry=r,
        )
        self.active = Gauge("webcallback_callbacks_active", "Callbacks this node is running.", registry=r)
        self.legs_active = Gauge(
            "webcallback_legs_active", "Legs of this node's callbacks dialled and not yet ended.", registry=r
        )
        self.queue_depth = Gauge(
            "webcallback_queue_depth", "Callbacks queued in the store (all nodes).", registry=r
        )
        self.queue_wait = Histogram(
            "webcallback_queue_wait_seconds",
            "From accepted to claimed by a dispatcher.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.setup = Histogram(
            "webcallback_callback_setup_seconds",
            "From claimed to both legs connected.",
            buckets=SETUP_BUCKETS,
            registry=r,
        )
        self.post_dial_delay = Histogram(
            "webcallback_leg_post_dial_delay_seconds",
            "Per leg, from INVITE to the first 18x (or the answer).",
            ["leg"],
            buckets=SETUP_BUCKETS,
            registry=r,
        )
        self.talk = Histogram(
            "webcallback_talk_seconds",
            "Connected time of completed callbacks (what billing settles on).",
            buckets=TALK_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "webcallback_http_requests",
            "HTTP requests, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "webcallback_http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["route"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.store_duration = Histogram(
            "webcallback_store_call_duration_seconds",
            "Duration of one store call (`Database.run`), by operation.",
            ["operation"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.credit_reserved = Gauge(
            "webcallback_credit_reserved",
            "Credit held by open reservations (all nodes), by currency.",
            ["currency"],
            registry=r,
        )
        self.sip_workers_up = Gauge(
            "webcallback_sip_workers_up", "SIP engine processes (or the in-process engine) up.", registry=r
        )
        self.sip_workers_up.set(0)
        # Live callbacks and their open legs, so the gauges stay true even when a callback ends
        # without its legs' last steps (an engine error, a crash of a SIP worker).
        self._claimed: dict[str, float] = {}
        self._open_legs: dict[str, set[str]] = {}
        self._bridged: set[str] = set()
        self._currencies = {settings.billing.default_currency}  # shown at 0 before any reserve
        self.active.set_function(lambda: len(self._claimed))
        self.legs_active.set_function(lambda: sum(len(s) for s in self._open_legs.values()))

    # ---- the request path ------------------------------------------------------------------------

    def callback_accepted(self) -> None:
        self.accepted.inc()

    def callback_refused(self, error_id: str) -> None:
        self.refused.labels(error_id).inc()

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route).observe(seconds)

    # ---- the dispatcher ------------------------------------------------------------------------

    def claimed(self, callback: Callback) -> None:
        now = time.time()
        self._claimed[callback.id] = now
        self.queue_wait.observe(max(0.0, now - callback.created_at.timestamp()))

    def progress(self, event: ProgressEvent) -> None:
        if event.leg is not None:
            legs = self._open_legs.setdefault(event.callback_id, set())
            if event.state in _OPEN_LEG:
                legs.add(event.leg.value)
            elif event.state is LegState.ENDED:
                legs.discard(event.leg.value)
        if event.state is LegState.BRIDGED and event.callback_id not in self._bridged:
            self._bridged.add(event.callback_id)  # each leg reports its bridging: count the first
            if (claimed := self._claimed.get(event.callback_id)) is not None:
                self.setup.observe(max(0.0, event.at - claimed))

    def finished(self, callback_id: str, state: str, outcome: CallOutcome) -> None:
        self.finished_total.labels(state, outcome.reason).inc()
        for role, leg in outcome.legs.items():
            if leg.final_state is LegState.IDLE:
                continue
            code = str(leg.sip_code) if leg.sip_code is not None else "none"
            self.legs.labels(role.value, code, self._trunk).inc()
            if leg.setup_s is not None:
                self.post_dial_delay.labels(role.value).observe(leg.setup_s)
        if outcome.completed:
            self.talk.observe(outcome.bridged_s)
        self.ended(callback_id)

    def ended(self, callback_id: str) -> None:
        self._claimed.pop(callback_id, None)
        self._bridged.discard(callback_id)
        self._open_legs.pop(callback_id, None)

    # ---- the store -----------------------------------------------------------------------------

    def store_call(self, operation: str, seconds: float) -> None:
        self.store_duration.labels(operation).observe(seconds)

    # ---- scraping ------------------------------------------------------------------------------

    def watch_sip_workers(self, count: Callable[[], int]) -> None:
        self.sip_workers_up.set_function(count)

    def read_store(self, gauges: StoreGauges) -> None:
        """Called before each scrape, through `Database.run`."""
        self.queue_depth.set(gauges.queued())
        reserved = gauges.reserved()
        self._currencies |= set(reserved)
        for currency in self._currencies:  # a currency with nothing reserved any more shows 0
            self.credit_reserved.labels(currency).set(float(reserved.get(currency, 0)))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
