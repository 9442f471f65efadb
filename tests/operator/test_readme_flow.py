"""README's "add accounts" and "configure the app" commands, exactly as written there: each line
that runs `.venv/bin/webcallback` is run by bash in a real terminal (a pty that is the process's
controlling terminal, so the password prompts are the real, unechoed ones), against a running
`webcallback run`. The app-exact client's callback must be accepted with no failed login."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.dispatch.service_process import SRC, running_service, service_env

README = SRC.parent / "README.md"
PASSWORD = "S3cret"  # the README's


def readme_commands(section: str) -> list[str]:
    """The shell lines of the first code block under `section` that run webcallback."""
    text = README.read_text()
    start = text.index(section)
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if ".venv/bin/webcallback" in line]


def in_terminal(line: str, cwd: Path, env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run `line` with bash on a pty; type `answer` at every password prompt."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # after setsid (start_new_session)
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(["bash", "-c", line], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=controlling_terminal)  # fmt: skip
    os.close(slave)
    output, answered_at = b"", -1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal closed, the command ended
                break
            if not chunk:
                break
            output += chunk
            # A prompt is what the output ends with while the command waits for it, answered
            # once: a warning line that names a password (provisioning's) is not one.
            waiting = re.search(rb"(?i)(?:password[^\r\n]*|repeat for confirmation): $", output)
            if waiting and answered_at != len(output):
                # getpass turns echo off with TCSAFLUSH, which drops what was typed before: type
                # once it has (the pty's modes are shared by both ends).
                while termios.tcgetattr(master)[3] & termios.ECHO and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.write(master, answer.encode() + b"\n")
                answered_at = len(output)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(10), output.decode(errors="replace").replace("\r\n", "\n")


def test_the_readmes_account_and_provisioning_commands_work_as_written(tmp_path: Path) -> None:
    env = service_env(f"sqlite:///{tmp_path / 'webcallback.db'}", ENGINE__KIND="none", API__TOKEN="t0ken")
    env["PATH"] = f"{tmp_path / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    shim = tmp_path / ".venv" / "bin" / "webcallback"  # the README's path, running this checkout
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m webcallback "$@"\n')
    shim.chmod(0o755)
    commands = readme_commands("add accounts with the CLI") + readme_commands("## Configure the app")
    assert [c.partition(".venv/bin/webcallback ")[2].split()[:2] for c in commands] == [
        ["account", "add"], ["rates", "import"], ["calls", "list"], ["provision", "xml"], ["client", "call"]
    ]  # fmt: skip
    with running_service(env, tmp_path) as service:
        outputs = []
        # the commands see the port the service bound (provisioning derives the app's URL from it)
        cli_env = env | {"WEBCALLBACK_SERVER__LISTEN": service.url.removeprefix("http://")}
        for line in commands:
            status, output = in_terminal(line, tmp_path, cli_env, PASSWORD)
            assert status == 0, f"{line}\n{output}"
            assert PASSWORD not in output  # prompts do not echo
            outputs.append(output)
        assert "waiting for call" in outputs[-1]
        account = (tmp_path / "alice.xml").read_text()
        assert "<callbackNumber>+12025550124</callbackNumber>" in account
        assert (
            f"<password>{PASSWORD}</password>" in account
            and (tmp_path / "alice.xml").stat().st_mode & 0o077 == 0
        )
        events = json.loads(service.cli("security", "events", "--json").stdout)
        assert [e for e in events if e["kind"] == "auth-failed"] == []
        listed = json.loads(service.cli("calls", "list", "--json").stdout)
        assert [(c["username"], c["destination"], c["callback"]) for c in listed] == [
            ("alice", "+12025550123", "+12025550124")
        ]
