"""The lab's phones: one SIPp process on 127.0.0.1 that answers any number (`scenarios/lab_phone.xml`).

An async context manager: entering starts SIPp as a child process and waits until its UDP port is
bound; leaving stops it (SIGTERM, then SIGKILL). SIPp runs in its own session, so a Ctrl-C in the
terminal reaches only the service, which drains its calls before it stops the phones. On Linux the
child is also told to die with the service (PR_SET_PDEATHSIG), so a killed service leaves no phone
behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import random
import shutil
import signal
import socket
import sys
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "lab_phone.xml"
READY_TIMEOUT = 5.0
STOP_TIMEOUT = 3.0


class LabError(Exception):
    """The phone lab could not start."""


# Below Linux's ephemeral range (32768-60999): a port chosen there can be taken by any socket bound
# to port 0 between our check and SIPp's bind (seen in CI as SIPp's errno 98).
LAB_PORTS = (20000, 32000)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free now, chosen at random outside the kernel's ephemeral range."""
    for _ in range(500):
        port = random.randint(*LAB_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise LabError(f"no free UDP port in {LAB_PORTS[0]}-{LAB_PORTS[1]}")


def udp_port_bound(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LabPhones:
    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        ring_ms: int = 1000,
        log_dir: Path = Path("var/lab"),
        scenario: Path = SCENARIO,
    ) -> None:
        self.host, self.port, self.ring_ms, self.scenario = host, port, ring_ms, scenario
        self._log_dir = log_dir
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        """Where to send every leg: the lab's "trunk"."""
        return f"sip:{self.host}:{self.port}"

    def command(self, sipp: str) -> list[str]:
        errors = self._log_dir / "sipp_errors.log"
        return [sipp, "-sf", str(self.scenario), "-i", self.host, "-p", str(self.port), "-nostdin",
                "-set", "RING_MS", str(self.ring_ms), "-trace_err", "-error_file", str(errors)]  # fmt: skip

    async def __aenter__(self) -> LabPhones:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise LabError("SIPp is not installed (Debian package sip-tester; `make run` installs it)")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        stderr = (self._log_dir / "sipp.log").open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(sipp),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_die_with_parent,
                start_new_session=True,  # Ctrl-C in the terminal is for the service, which drains first
            )
        finally:
            stderr.close()
        await self._wait_ready()
        log.info("phone lab: SIPp (pid %d) answers any number at %s", self._proc.pid, self.uri)
        return self

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
        while not udp_port_bound(self.host, self.port):
            if self._proc.returncode is not None or asyncio.get_running_loop().time() > deadline:
                await self._stop()
                raise LabError(f"SIPp did not start on {self.host}:{self.port}; see {self._log_dir}/sipp.log")
            await asyncio.sleep(0.02)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.info("phone lab: SIPp stopped")
