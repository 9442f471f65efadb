"""The deployment files in `deploy/` agree with the service: the systemd unit passes
`systemd-analyze verify`, waits for sd_notify readiness and allows the drain; the container runs
unprivileged with one state volume and checks `/readyz`; nginx sends the headers the service
trusts. (No container runtime can build images here: the Dockerfile is checked by reading it.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webcallback.config import CallSettings
from webcallback.service.dispatcher import HANGUP_GRACE

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "webcallback.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's command
    here = Path(sys.executable).parent / "webcallback"
    unit = tmp_path / "webcallback.service"
    unit.write_text(
        (DEPLOY / "webcallback.service").read_text().replace("/opt/webcallback/bin/webcallback", str(here))
    )
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def test_the_unit_waits_for_readiness_and_allows_the_drain() -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    stop = int(unit["TimeoutStopSec"][0])
    assert stop >= CallSettings().drain_timeout + HANGUP_GRACE
    assert unit["DynamicUser"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    state = "/var/lib/" + unit["StateDirectory"][0]
    env = dict(e.partition("=")[::2] for e in unit["Environment"])
    assert env["WEBCALLBACK_NODE__STATE_DIR"] == state
    assert env["WEBCALLBACK_SECRETS__KEY_FILE"].startswith(state + "/")
    assert env["WEBCALLBACK_DATABASE__URL"] == f"sqlite:///{state}/webcallback.db"


def test_the_container_is_unprivileged_with_one_state_volume_and_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final = text.rpartition("\nFROM ")[2]  # the runtime stage
    user = re.findall(r"(?m)^USER (\S+)", final)
    assert user and user[-1] not in ("root", "0")
    volumes = re.findall(r'(?m)^VOLUME \["([^"]+)"\]', final)
    assert len(volumes) == 1
    for variable in ("NODE__STATE_DIR", "SECRETS__KEY_FILE", "DATABASE__URL"):
        assert re.search(rf"WEBCALLBACK_{variable}=\S*{volumes[0]}", final), variable
    assert re.search(r"(?m)^HEALTHCHECK .*\n?.*/readyz", final)
    assert "dev" not in re.findall(r"pip install[^\n]*", text)[0]
    compose = (DEPLOY / "compose.yaml").read_text()
    assert 'command: ["webcallback", "db", "upgrade"]' in compose
    assert "condition: service_completed_successfully" in compose
    grace = int(re.search(r"stop_grace_period: (\d+)s", compose).group(1))  # type: ignore[union-attr]
    assert grace >= CallSettings().drain_timeout + HANGUP_GRACE


def test_nginx_sends_the_forwarded_headers_the_service_reads() -> None:
    from webcallback.web import client_info

    source = Path(client_info.__file__).read_text()
    conf = (DEPLOY / "nginx.conf").read_text()
    for header in ("X-Forwarded-For", "X-Forwarded-Proto"):
        assert header.lower() in source.lower()
        assert conf.count(f"proxy_set_header {header} ") == 2  # both locations
    assert 'trusted_proxies = ["127.0.0.1"]' in conf and "server 127.0.0.1:8080" in conf
    assert "listen 443 ssl" in conf and "ssl_certificate " in conf
