"""Real SIP peers for the engine tests: SIPp phones and a Kamailio proxy on 127.0.0.1.

Each phone is one SIPp UAS on a free port that plays one scenario from `webcallback/lab/scenarios`
for one call, wrapped in coreutils `timeout` (SIPp's own -timeout does not stop a stuck call).
A phone's number ends in its port, the lab's numbering plan: `+1555` + 7 digits, last five = port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from webcallback.lab import KAMAILIO_CFG, SCENARIOS_DIR
from webcallback.lab.phones import free_udp_port as lab_udp_port

SIPP = shutil.which("sipp")
TEST_SCENARIOS = Path(__file__).parent / "scenarios"  # far ends only the tests play
KAMAILIO = shutil.which("kamailio")
HARD_LIMIT_S = 40  # coreutils timeout around every SIPp


def free_udp_port() -> int:
    """A UDP port free now, outside the kernel's ephemeral range (where any socket bound to port 0
    may take it before the peer we hand it to binds it); the peer's start-up still checks."""
    return lab_udp_port()


def udp_port_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


START_CEILING = 300.0  # seconds: a hang guard, not a start-up budget


def wait_bound(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = START_CEILING) -> None:
    """Until `proc` (or a child of it: SIPp runs under `timeout`) has bound UDP `port`; raises
    `RuntimeError` when it exits first, e.g. because another process holds the port."""
    deadline = time.monotonic() + timeout
    while not _bound_by(port, proc.pid):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not bind 127.0.0.1:{port} (exit {proc.poll()})")
        time.sleep(0.02)


def _bound_by(port: int, pid: int) -> bool:
    inodes = _udp_inodes(port)
    return bool(inodes) and any(inodes & _socket_inodes(p) for p in process_tree(pid))


def _udp_inodes(port: int) -> set[str]:
    """Inodes of the IPv4 UDP sockets bound to 127.0.0.1:`port` (or to any address)."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return {fields[9] for fields in (line.split() for line in lines) if fields[1] in wanted}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
    return tree


def number_for(port: int) -> str:
    return f"+155500{port:05d}"


def loopback_next_hop(number: str) -> tuple[str, int]:
    """Direct tests (no proxy): each number is sent straight to the phone on its port."""
    return "127.0.0.1", int(number[-5:])


@dataclass
class SipMessage:
    direction: str  # "sent" | "received"
    at: float  # seconds, SIPp's wall clock
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str:
        return "" if self.first_line.startswith("SIP/2.0") else self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        parts = self.first_line.split(" ")
        return int(parts[1]) if parts[0] == "SIP/2.0" else None

    @property
    def cseq_method(self) -> str:
        m = re.search(r"^CSeq:\s*\d+\s+(\w+)", self.text, re.M | re.I)
        return m.group(1) if m else ""

    def headers(self, name: str) -> list[str]:
        return re.findall(rf"^{name}:\s*(.*?)\s*$", self.head, re.M | re.I)

    @property
    def head(self) -> str:
        return self.text.split("\n\n", 1)[0]

    @property
    def body(self) -> str:
        parts = self.text.split("\n\n", 1)
        return parts[1] if len(parts) > 1 else ""


_TRACE_SPLIT = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d\s[\d:.]+)\s*$", re.M)


def parse_trace(text: str) -> list[SipMessage]:
    """SIPp's -trace_msg file: a dashed line with the time, a direction line, then the message."""
    chunks = _TRACE_SPLIT.split(text.replace("\r\n", "\n"))
    out = []
    for stamp, chunk in zip(chunks[1::2], chunks[2::2], strict=False):
        head, _, message = chunk.strip("\n").partition("\n")
        direction = "received" if "received" in head else "sent"
        at = time.mktime(time.strptime(stamp.split(".")[0], "%Y-%m-%d %H:%M:%S")) + float(
            "0." + stamp.split(".")[1]
        )
        out.append(SipMessage(direction, at, message.strip("\n") + "\n"))
    return out


@dataclass
class Phone:
    scenario: str
    port: int
    media_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    rc: int | None = None
    args: list[str] = field(default_factory=list)

    @property
    def number(self) -> str:
        return number_for(self.port)

    @property
    def trace_file(self) -> Path:
        return self.workdir / f"{self.port}_msg.log"

    def start(
        self,
        ring_ms: int | None = None,
        talk_ms: int | None = None,
        calls: int = 1,
        knobs: dict[str, str] | None = None,
    ) -> Phone:
        """`knobs`: more `-set NAME VALUE` variables for the scenario."""
        assert SIPP is not None
        scenario = SCENARIOS_DIR / self.scenario  # a test scenario's absolute path stays as it is
        if talk_ms is not None:  # SIPp cannot take a variable as a recv timeout: edit a copy
            text = scenario.read_text().replace('timeout="3000"', f'timeout="{talk_ms}"')
            scenario = self.workdir / f"{self.port}_{scenario.name}"
            scenario.write_text(text)
        sets = {**({"RING_MS": str(ring_ms)} if ring_ms is not None else {}), **(knobs or {})}
        knob_args = [arg for name, value in sets.items() for arg in ("-set", name, value)]
        self.args = [
            "timeout", str(HARD_LIMIT_S), SIPP, "-sf", str(scenario), "-i", "127.0.0.1",
            "-p", str(self.port), "-mp", str(self.media_port), "-m", str(calls), "-nostdin",
            "-timeout", "30", "-trace_msg", "-message_file", str(self.trace_file),
            "-trace_err", "-error_file", str(self.workdir / f"{self.port}_err.log"), *knob_args,
        ]  # fmt: skip
        out = (self.workdir / f"{self.port}_sipp.out").open("wb")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_bound(self.port, self.proc, f"SIPp {self.scenario}")
        return self

    async def verdict(self, timeout: float = 20.0) -> int:
        """SIPp's exit code: 0 when the call went through the whole scenario."""
        assert self.proc is not None
        self.rc = await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
        return self.rc

    def kill(self) -> None:
        # SIGTERM: `timeout` passes it on to SIPp; SIGKILL would kill `timeout` alone and leave
        # SIPp running (its own -timeout does not end a call stuck in the scenario).
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def messages(self) -> list[SipMessage]:
        if not self.trace_file.exists():
            return []
        return parse_trace(self.trace_file.read_text(errors="replace"))

    def received(self, method: str) -> list[SipMessage]:
        return [m for m in self.messages() if m.direction == "received" and m.method == method]

    def sent_status(self, status: int, cseq_method: str = "INVITE") -> list[SipMessage]:
        return [
            m for m in self.messages()
            if m.direction == "sent" and m.status == status and m.cseq_method == cseq_method
        ]  # fmt: skip

    def debug(self) -> str:
        out = self.workdir / f"{self.port}_sipp.out"
        err = self.workdir / f"{self.port}_err.log"
        tail = out.read_text(errors="replace")[-1500:] if out.exists() else ""
        errors = err.read_text(errors="replace")[-1500:] if err.exists() else ""
        return f"{self.scenario} on {self.port} rc={self.rc}\n{tail}\n{errors}"


KAMAILIO_START_CEILING = 300.0  # seconds: a hang guard, not a start-up budget
KAMAILIO_ATTEMPTS = 5


@contextlib.contextmanager
def kamailio(workdir: Path, port: int | None = None) -> Iterator[int]:
    """A record-routing Kamailio on a free loopback port, in the foreground; yields its port.

    Kamailio cannot be handed a bound socket, so the port it is given may be taken before it binds
    it (by another test process): then it exits, and it is started again on another port. Ready
    means it answers an OPTIONS on the port (so the port is its own), not merely "the port is bound"."""
    assert KAMAILIO is not None
    rundir = workdir / "kamailio-run"
    rundir.mkdir(exist_ok=True)
    for attempt in range(KAMAILIO_ATTEMPTS):
        port = port if port is not None and attempt == 0 else lab_udp_port()
        log_file = workdir / f"kamailio-{attempt}.log"
        args = [
            "timeout", "600", KAMAILIO, "-f", str(KAMAILIO_CFG), "-l", f"udp:127.0.0.1:{port}",
            "-DD", "-E", "-m", "32", "-M", "4", "-Y", str(rundir), "-w", str(rundir),
        ]  # fmt: skip
        with log_file.open("wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            if _answers_options(port, proc):
                yield port
                return
        finally:
            _stop(proc)
        if "Address already in use" not in log_file.read_text(errors="replace"):
            break  # not a port taken: trying other ports will not help
    raise RuntimeError(f"kamailio did not start: {log_file.read_text(errors='replace')[-2000:]}")


def _answers_options(port: int, proc: subprocess.Popen[bytes]) -> bool:
    """Whether the SIP server on `port` answers a keepalive OPTIONS while `proc` runs (False: it
    exited, e.g. the port was taken)."""
    deadline = time.monotonic() + KAMAILIO_START_CEILING
    call_id = f"ready-{port}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.2)
        local = probe.getsockname()[1]
        options = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 10\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"kamailio on {port} hung in start-up")
            probe.sendto(options, ("127.0.0.1", port))
            try:
                while True:
                    answer = probe.recv(65535).decode(errors="replace")
                    if call_id in answer and answer.startswith("SIP/2.0 200"):
                        return True
            except (TimeoutError, ConnectionRefusedError):
                continue  # not listening yet (ICMP unreachable), or no answer yet
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


BARESIP = shutil.which("baresip")

_BARESIP_CONFIG = """\
poll_method\tepoll
sip_listen\t127.0.0.1:{port}
call_local_timeout\t120
call_max_calls\t4
audio_source\taubridge,loop
audio_player\taubridge,loop
audio_alert\taubridge,loop
rtp_ports\t{rtp}-{rtp_end}
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taubridge.so
module_tmp\tuuid.so
module_tmp\taccount.so
"""


@dataclass
class Baresip:
    """A real softphone (baresip) that answers at once, talks G.711 and sends RTP (an echo).

    No sound card: aubridge loops what it "hears" back. Its account user is the lab number, so
    it accepts INVITEs for it; `-s` puts its SIP trace in the log."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def number(self) -> str:
        return number_for(self.port)

    @property
    def log_file(self) -> Path:
        return self.workdir / f"baresip_{self.port}.log"

    def start(self, lifetime_s: int = 30) -> Baresip:
        assert BARESIP is not None
        conf = self.workdir / f"baresip_{self.port}"
        conf.mkdir(parents=True)
        # Below the phone lab's ports (LAB_PORTS, 20000-32000) and the kernel's ephemeral range: an
        # RTP range there once took the port a parallel test's lab SIPp was about to bind (errno 98).
        rtp = 10000 + (self.port % 9900)
        (conf / "config").write_text(_BARESIP_CONFIG.format(port=self.port, rtp=rtp, rtp_end=rtp + 20))
        (conf / "accounts").write_text(
            f"<sip:{self.number}@127.0.0.1:{self.port}>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n"
        )
        args = ["timeout", str(lifetime_s + 5), BARESIP, "-f", str(conf), "-n", "127.0.0.1", "-s",
                "-t", str(lifetime_s)]  # fmt: skip
        out = self.log_file.open("wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        wait_bound(self.port, self.proc, "baresip")
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
