"""`/metrics` scraped from a real `webcallback run` child after real callbacks over SIP (SIPp
phones), with the SIP engine in the service's process and over two worker processes; parsed with
prometheus-client's own parser. The Grafana dashboard in docs/ only queries metrics seen here."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dispatch.service_process import Service, running_service
from tests.dispatch.test_end_to_end import phones, place, start, watch
from webcallback.lab.phones import LabPhones, free_udp_port, udp_port_bound

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed"),
]
__all__ = ["phones"]  # the SIPp phones fixture

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(service: Service) -> Samples:
    r = httpx.get(service.url + "/metrics", headers={"Authorization": f"Bearer {service.token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of `webcallback_<name>` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == "webcallback_" + name and want <= ls)


def check_after_calls(service: Service, calls: int, workers: int) -> Samples:
    samples = scrape(service)
    assert value(samples, "callbacks_accepted_total") == calls
    assert value(samples, "callbacks_refused_total", reason="invalid-number") == 1
    assert value(samples, "callbacks_finished_total", state="completed", reason="completed") == calls
    for leg in ("destination", "callback"):
        assert value(samples, "legs_total", leg=leg, sip_code="200", trunk="127.0.0.1") == calls
        assert value(samples, "leg_post_dial_delay_seconds_count", leg=leg) == calls
    assert value(samples, "talk_seconds_count") == calls
    assert value(samples, "talk_seconds_sum") > 0
    assert value(samples, "callback_setup_seconds_count") == calls
    assert value(samples, "queue_wait_seconds_count") == calls
    assert value(samples, "callbacks_active") == 0
    assert value(samples, "legs_active") == 0
    assert value(samples, "queue_depth") == 0
    assert value(samples, "sip_workers_up") == workers
    route = "/webcallback"
    assert value(samples, "http_requests_total", route=route, method="POST", status="200") == calls
    assert value(samples, "http_requests_total", route=route, status="400") == 1
    assert value(samples, "http_request_duration_seconds_count", route=route) == calls + 1
    assert value(samples, "http_requests_total", route="/api/v1/callbacks/{callback_id}") > 0
    assert value(samples, "store_call_duration_seconds_count", operation="CallbackStore.claim_queued") > 0
    return samples


def refuse_one(service: Service) -> None:
    r = service.request_callback("alice", "pa55word", "not a number")
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid-number"


def test_the_dashboard_is_json_and_queries_only_scraped_metrics(
    sqlite_url: str, tmp_path: Path, phones: LabPhones
) -> None:
    env, cwd = start(sqlite_url, tmp_path, phones.uri)
    with running_service(env, cwd) as service:
        assert httpx.get(service.url + "/metrics", timeout=10).status_code == 401
        wrong = httpx.get(service.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert (wrong.status_code, wrong.json()["error"]) == (401, "bad-token")
        refuse_one(service)
        for _ in range(2):
            assert watch(service, place(service))[-1] == "completed"
        samples = check_after_calls(service, calls=2, workers=1)
    scraped = {name for name, _labels in samples}
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"webcallback_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 14
    assert queried <= scraped, queried - scraped


def test_with_two_sip_worker_processes_the_service_counts_every_call(
    sqlite_url: str, tmp_path: Path, phones: LabPhones
) -> None:
    listen = next(p for p in iter(free_udp_port, 0) if not udp_port_bound("127.0.0.1", p + 1))
    env, cwd = start(sqlite_url, tmp_path, phones.uri, ENGINE__SIP__PROCESSES="2",
                     ENGINE__SIP__LISTEN=f"127.0.0.1:{listen}")  # fmt: skip
    with running_service(env, cwd) as service:
        refuse_one(service)
        ids = [place(service) for _ in range(4)]  # callbacks are shared among the workers by id
        for callback_id in ids:
            assert watch(service, callback_id)[-1] == "completed"
        check_after_calls(service, calls=4, workers=2)
