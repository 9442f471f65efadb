"""The first-run phone lab: when it starts, the SIPp phones' lifetime, the demo account and banner."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.dispatch.fake_engine import FakeEngine
from webcallback.config import Secret
from webcallback.lab.demo import DEMO_USER, plan_lab
from webcallback.lab.phones import LabPhones, free_udp_port, udp_port_bound
from webcallback.web.server import build_app

needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is not installed")


def test_the_lab_runs_only_for_the_sip_engine_without_a_trunk(sqlite_url: str) -> None:
    trunk = make_settings(sqlite_url, ENGINE__KIND="sip", ENGINE__SIP__TRUNK="sip:10.0.0.1")
    assert plan_lab(trunk) == (trunk, None)
    none = make_settings(sqlite_url)
    assert plan_lab(none) == (none, None)
    settings, lab = plan_lab(make_settings(sqlite_url, ENGINE__KIND="sip"))
    assert lab is not None and lab.token
    assert settings.engine.sip.trunk == lab.phones.uri == f"sip:127.0.0.1:{lab.phones.port}"
    assert settings.api.token == Secret(lab.token)


def test_a_configured_api_token_is_kept_and_not_printed(sqlite_url: str) -> None:
    settings, lab = plan_lab(make_settings(sqlite_url, ENGINE__KIND="sip", API__TOKEN="mine"))
    assert lab is not None and lab.token is None and settings.api.token == Secret("mine")


@pytest.mark.sip
@needs_sipp
async def test_the_phones_run_only_while_the_lab_is_entered(tmp_path: Path) -> None:
    phones = LabPhones(free_udp_port(), log_dir=tmp_path)
    async with phones:
        assert udp_port_bound("127.0.0.1", phones.port)
        assert phones._proc is not None and phones._proc.returncode is None
    assert not udp_port_bound("127.0.0.1", phones.port)


@pytest.mark.sip
@needs_sipp
async def test_build_app_starts_the_lab_creates_the_demo_account_and_prints_how_to_call(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the lab writes its SIPp logs under ./var/lab
    engine = FakeEngine()
    app = build_app(make_settings(sqlite_url, ENGINE__KIND="sip"), engine_factory=lambda _s: engine)
    async with app.router.lifespan_context(app):
        assert engine.started
        text = capsys.readouterr().out
        port = int(re.search(r"SIPp phones at sip:127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]  # no match fails
        assert udp_port_bound("127.0.0.1", port)
    assert engine.stopped and not udp_port_bound("127.0.0.1", port)
    password = re.search(rf"{DEMO_USER} / (\S+)", text).group(1)  # type: ignore[union-attr]  # no match fails
    assert "Authorization: Bearer " in text and "curl" in text and password in text
    assert (tmp_path / "var/lab/sipp.log").exists()
