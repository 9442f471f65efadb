"""The CLI against a real SQLite file, as an operator would use it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from webcallback.cli.main import main

Run = Callable[..., Result]  # run(*args): the CLI with this test's config


@pytest.fixture
def run(tmp_path: Path) -> Run:
    config = tmp_path / "webcallback.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/db.sqlite"\n[secrets]\nkey_file = "{tmp_path}/key"\n'
    )

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)

    return invoke


def test_account_commands(run: Run) -> None:
    added = run(
        "account",
        "add",
        "alice",
        "--password",
        "S3cret",
        "--callback-number",
        "+15559879876",
        "--credit",
        "5",
        "--region",
        "us",
    )
    assert added.exit_code == 0, added.output
    assert run("account", "add", "alice", "--password", "x").exit_code == 1
    shown = json.loads(run("account", "show", "alice").output)
    assert shown["callback_number"] == "+15559879876" and shown["region"] == "US" and shown["balance"] == "5"
    assert "S3cret" not in run("account", "show", "alice").output
    assert (
        run("account", "set", "alice", "--callback-number", "(650) 253-0000", "--credit", "7.25").exit_code
        == 0
    )
    shown = json.loads(run("account", "show", "alice").output)
    assert shown["callback_number"] == "+16502530000" and shown["balance"] == "7.25"
    assert run("account", "disable", "alice").exit_code == 0
    assert json.loads(run("account", "list", "--json").output)[0]["enabled"] is False
    assert "disabled" in run("account", "list").output
    assert run("account", "enable", "alice").exit_code == 0
    assert run("account", "delete", "alice").exit_code == 0
    assert run("account", "show", "alice").exit_code == 1


def test_bad_values_are_refused(run: Run) -> None:
    assert run("account", "add", "bob", "--password", "x", "--region", "USA").exit_code == 2
    assert run("account", "add", "bob", "--password", "x", "--credit", "lots").exit_code == 2
    result = run("account", "add", "bob", "--password", "x", "--callback-number", "call me")
    assert result.exit_code == 2 and "not a phone number" in result.output


def test_calls_list_and_show(run: Run, tmp_path: Path) -> None:
    from webcallback.config import load_settings
    from webcallback.service.container import build_services

    run("account", "add", "alice", "--password", "S3cret")
    services = build_services(load_settings(tmp_path / "webcallback.toml", environ={}))
    cb = services.callbacks.create(
        account_id=1, username="alice", destination="+15551231234", callback="+15559879876"
    )
    services.close()
    listed = run("calls", "list", "--json")
    assert [c["id"] for c in json.loads(listed.output)] == [cb.id]
    assert cb.id in run("calls", "list").output
    shown = json.loads(run("calls", "show", cb.id, "--json").output)
    assert shown["state"] == "queued" and shown["destination"] == "+15551231234"
    assert run("calls", "show", "nope").exit_code == 1
