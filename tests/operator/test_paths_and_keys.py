"""Operator traps: relative paths follow the config file, not the working directory; a created
database or key file is announced; the wrong key file is refused. Run as an operator would: the
real `webcallback` command, from a directory other than the config file's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def webcallback(*args: str, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WEBCALLBACK_", "NOTIFY_SOCKET"))}
    environ |= {"PYTHONPATH": str(SRC), **env}
    return subprocess.run(
        [sys.executable, "-m", "webcallback", *args],
        cwd=cwd, env=environ, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """`etc/webcallback.toml` with relative paths, and an unrelated working directory."""
    etc, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    etc.mkdir()
    elsewhere.mkdir()
    (etc / "webcallback.toml").write_text(
        '[database]\nurl = "sqlite:///var/webcallback.db"\n[secrets]\nkey_file = "var/secret.key"\n'
        '[engine]\nkind = "none"\n'
    )
    return etc, elsewhere


def test_relative_paths_resolve_against_the_config_files_directory(layout: tuple[Path, Path]) -> None:
    etc, elsewhere = layout
    added = webcallback("--config", "../etc/webcallback.toml", "account", "add", "alice",
                        "--password-stdin", cwd=elsewhere, stdin="S3cret\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    # Both files were created next to the config file, and said so.
    assert (etc / "var" / "webcallback.db").exists() and (etc / "var" / "secret.key").exists()
    assert f"database {etc / 'var' / 'webcallback.db'} does not exist: creating" in added.stderr
    assert f"password key file {etc / 'var' / 'secret.key'} does not exist: creating" in added.stderr
    assert list(elsewhere.iterdir()) == []
    # From the config file's own directory, and from a third one: the same account, nothing created.
    for cwd in (etc, elsewhere.parent):
        listed = webcallback("--config", str(etc / "webcallback.toml"), "account", "list", cwd=cwd)
        assert listed.returncode == 0 and "alice" in listed.stdout, listed.stderr
        assert "creating" not in listed.stderr
    shown = webcallback("--config", "etc/webcallback.toml", "config", "show", cwd=elsewhere.parent)
    assert f'key_file = "{etc / "var" / "secret.key"}"' in shown.stdout


def test_without_a_config_file_paths_follow_the_working_directory(tmp_path: Path) -> None:
    result = webcallback("account", "add", "bob", "--password-stdin", cwd=tmp_path, stdin="pw\n",
                         WEBCALLBACK_ENGINE__KIND="none")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "webcallback.db").exists() and "creating" in result.stderr


def with_an_account(etc: Path, cwd: Path) -> str:
    config = str(etc / "webcallback.toml")
    added = webcallback("--config", config, "account", "add", "alice", "--password", "x", cwd=cwd)
    assert added.returncode == 0, added.stderr
    return config


def test_a_missing_key_file_is_not_replaced_when_accounts_need_it(layout: tuple[Path, Path]) -> None:
    etc, elsewhere = layout
    config = with_an_account(etc, elsewhere)
    key = etc / "var" / "secret.key"
    key.rename(etc / "var" / "moved.key")
    refused = webcallback("--config", config, "account", "list", cwd=elsewhere)
    assert refused.returncode == 2
    assert f"config secrets.key_file: {key} does not exist, but the database has accounts" in refused.stderr
    assert not key.exists()  # no new key was made to hide the problem


def test_keys_that_cannot_open_the_stored_passwords_are_refused(layout: tuple[Path, Path]) -> None:
    etc, elsewhere = layout
    config = with_an_account(etc, elsewhere)
    (etc / "var" / "secret.key").write_text("Ab" * 21 + "A=\n")  # another (valid, 32-byte) key
    for command in (("account", "list"), ("run",)):
        refused = webcallback("--config", config, *command, cwd=elsewhere)
        assert refused.returncode == 2, refused.stderr
        assert (
            "error: config secrets.key: stored account passwords are encrypted under key id(s)"
            in refused.stderr
        )
    assert "Traceback" not in refused.stderr


def test_list_commands_have_a_header_row_and_passwords_need_not_be_arguments(
    layout: tuple[Path, Path],
) -> None:
    etc, elsewhere = layout
    config = str(etc / "webcallback.toml")
    both = webcallback("--config", config, "account", "add", "x", "--password", "a", "--password-stdin",
                       cwd=elsewhere, stdin="b\n")  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr
    empty = webcallback("--config", config, "account", "add", "x", "--password-stdin", cwd=elsewhere)
    assert empty.returncode == 2 and "has no password" in empty.stderr
    added = webcallback("--config", config, "account", "add", "alice", "--password-stdin",
                        "--callback-number", "+12025550124", cwd=elsewhere, stdin="S3cret\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    changed = webcallback("--config", config, "account", "set", "alice", "--password-stdin", cwd=elsewhere,
                          stdin="N3w\n")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    header, row = webcallback("--config", config, "account", "list", cwd=elsewhere).stdout.splitlines()
    assert header.split() == ["USERNAME", "CALLBACK", "REGION", "BALANCE", "CURRENCY", "STATE"]
    assert row.split() == ["alice", "+12025550124", "--", "0", "USD", "enabled"]
    calls = webcallback("--config", config, "calls", "list", cwd=elsewhere).stdout.splitlines()
    assert calls[0].split() == ["ID", "CREATED", "USERNAME", "DESTINATION", "CALLBACK", "STATE", "REASON"]
    assert len(calls) == 1
