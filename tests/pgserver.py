"""A real PostgreSQL server for the tests: initdb into a temporary folder, started on a free
loopback port, one fresh database per test. Uses Debian's `postgresql` package binaries.

PostgreSQL cannot be handed a bound socket, so a port that is free when chosen may be taken before
it binds (another test process): then it exits with "could not bind", and it is started again on
another port. Ready means our own server answers (its data directory), not merely "a port answers"."""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


START_CEILING = 300.0  # seconds: a hang guard, not a start-up budget
START_ATTEMPTS = 5
# Below Linux's ephemeral range (32768-60999), where every connect() takes its local port.
PORTS = (20000, 32000)


class PortTaken(Exception):
    """The server could not bind its port: someone took it first."""


def _free_port() -> int:
    for _ in range(500):
        port = random.randint(*PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {PORTS}")


def _run_as(user: str | None) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, so drop to the package's own user.
    return ["runuser", "-u", user, "--"] if user else []


class PostgresServer:
    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found: `make test` installs Debian's postgresql")
        self.bindir = bindir
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
        self.dir = Path(tempfile.mkdtemp(prefix="webcallback-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        data = self.dir / "data"
        if self.user:
            shutil.chown(self.dir, self.user)
        subprocess.run(
            [
                *_run_as(self.user),
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "webcb",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for attempt in range(START_ATTEMPTS):
            try:
                self._start_postgres(data)
                return
            except PortTaken:
                if attempt == START_ATTEMPTS - 1:
                    raise RuntimeError(f"PostgreSQL found no free port: {self._log()}") from None
                self.port = _free_port()

    def _start_postgres(self, data: Path) -> None:
        with open(self.dir / "server.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    *_run_as(self.user),
                    str(self.bindir / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.dir),
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=300",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self._wait_ready(data)

    def _wait_ready(self, data: Path) -> None:
        import psycopg

        assert self.proc is not None
        deadline = time.monotonic() + START_CEILING
        while self.proc.poll() is None:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    row = conn.execute("SELECT current_setting('data_directory')").fetchone()
                if row is not None and Path(row[0]).resolve() == data.resolve():
                    return  # ours, not another test process's server on a port it took
            except psycopg.OperationalError:
                pass  # not accepting connections yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL hung in start-up: {self._log()}")
            time.sleep(0.1)
        if "could not bind" in self._log() or "Address already in use" in self._log():
            raise PortTaken
        raise RuntimeError(f"PostgreSQL did not start: {self._log()}")

    def halt(self) -> None:
        """Stop the server and keep its data: an outage, ended by `resume`."""
        assert self.proc is not None
        # SIGINT is PostgreSQL's fast shutdown: it ends the open sessions (SIGTERM would wait for
        # the clients to disconnect). Sent to the postmaster itself, not to the runuser wrapper.
        pid_file = self.dir / "data" / "postmaster.pid"
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        self.proc.wait(timeout=START_CEILING)

    def resume(self) -> None:
        """Start the halted server again, on its port (the clients' URLs stay valid)."""
        self._start_postgres(self.dir / "data")

    def _log(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")[-2000:]

    def url(self, database: str) -> str:
        return f"postgresql://webcb@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
