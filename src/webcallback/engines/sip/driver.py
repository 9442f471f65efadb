"""One callback inside the reactor thread: feeds sippy's events to the core, runs its commands.

Everything here runs in the sippy reactor thread. The driver owns one `CallbackSession` and up to
two sippy `UA`s (one per leg). It keeps a single sippy timer armed at the session's next deadline.
sippy may call us back while we are still carrying out commands (a UA can report an event from
inside `recvEvent`), so incoming events are queued and handled one at a time, in order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webcallback.core import CallbackSession, IllegalTransition
from webcallback.core import events as ev
from webcallback.core.commands import Ack, Bye, Cancel, Command, Finished, Originate, Reoffer, Report
from webcallback.domain import CallOutcome, EndedBy, LegRole, LegState, ProgressEvent
from webcallback.engines.sip._sippy import (
    UA,
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventTry,
    CCEventUpdate,
    MsgBody,
    SipCallId,
    Timeout,
)
from webcallback.engines.sip.addressing import NextHop, from_identity
from webcallback.engines.sip.dialogs import read_dialog
from webcallback.engines.sip.translate import to_core
from webcallback.logs import CALLBACK_ID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dialling:
    """What every leg of every callback shares: the reactor's config and the trunk."""

    sip_config: dict[str, Any]
    next_hop: NextHop
    username: str | None
    password: str | None  # revealed only here, handed straight to sippy; never logged
    from_domain: str | None
    clock: Callable[[], float]

    @property
    def local(self) -> tuple[str, int]:
        """Our SIP address as bound (the port is known once the reactor runs)."""
        return str(self.sip_config["_sip_address"]), int(self.sip_config["_sip_port"])


_CONFIRMED = (LegState.ANSWERED, LegState.BRIDGED)  # a 2xx was received: the dialog is real


@dataclass(frozen=True)
class Sink:
    """Where results go; the engine makes these thread-safe hops into asyncio."""

    progress: Callable[[ProgressEvent], None]
    finished: Callable[[CallOutcome], None]
    broken: Callable[[BaseException], None]


class _Invite(CCEventTry):  # type: ignore[misc]
    """CCEventTry that sets the From host (sippy would use our own address)."""

    def __init__(self, data: tuple[Any, ...], from_domain: str | None) -> None:
        super().__init__(data)
        self.from_domain = from_domain

    def onUacSetupComplete(self, uac: Any) -> None:
        if self.from_domain:
            url = uac.lUri.getUrl()
            url.host, url.port = self.from_domain, None


class CallDriver:
    def __init__(self, session: CallbackSession, dialling: Dialling, sink: Sink) -> None:
        self.session = session
        self.dialling = dialling
        self.sink = sink
        self.id = session.spec.callback_id
        self._uas: dict[LegRole, Any] = {}
        self._reported: dict[LegRole, LegState] = {}  # each leg's last reported state
        self._timer: Any = None
        self._inbox: deque[Callable[[], list[Command]]] = deque()
        self._busy = False
        self._dead = False

    # ---- entry points (reactor thread) -----------------------------------------------------

    def start(self) -> None:
        self._step(lambda: self.session.start(self.dialling.clock()))

    def hangup(self, ended_by: EndedBy) -> None:
        self._feed(ev.HangupRequested(ended_by=ended_by))

    def _on_sippy_event(self, event: Any, ua: Any) -> None:
        role = next((r for r, u in self._uas.items() if u is ua), None)
        if role is None:
            return
        if isinstance(event, CCEventUpdate):
            # A far end re-INVITEs (hold, codec change). Relaying it to the other leg is not
            # implemented; refusing it leaves the session as it was (RFC 3261 §14.1).
            log.info("%s: refusing a re-INVITE from the far end", role.value, extra={"callback_id": self.id})
            ua.recvEvent(CCEventFail((488, "Not Acceptable Here")))
            return
        # Read the event against the leg's phase when it is handled, not when it arrives: events
        # queued behind the current step may see a phase that step has not reached yet.
        self._step(lambda: self._receive(to_core(event, role, self.session.phase(role))))

    def _receive(self, event: ev.Event | None) -> list[Command]:
        if event is None:
            return []
        log.debug("<- %s", event)
        return self.session.receive(event, self.dialling.clock())

    def _on_timer(self) -> None:
        self._timer = None
        self._step(lambda: self.session.handle_timer(self.dialling.clock()))

    # ---- the loop ----------------------------------------------------------------------------

    def _feed(self, event: ev.Event) -> None:
        self._step(lambda: self._receive(event))

    def _step(self, produce: Callable[[], list[Command]]) -> None:
        self._inbox.append(produce)
        if self._busy:
            return
        self._busy = True
        # This callback's id on the lines of the step, and on what it hands to the loop (logs.py).
        token = CALLBACK_ID.set(self.id)
        try:
            while self._inbox and not self._dead:
                self._run(self._inbox.popleft())
            self._arm()
        finally:
            self._busy = False
            CALLBACK_ID.reset(token)

    def _run(self, produce: Callable[[], list[Command]]) -> None:
        try:
            commands = produce()
        except IllegalTransition as exc:  # a far end out of step (or a race): keep the call
            log.warning("ignored: %s", exc)
            return
        except Exception as exc:
            self._fail("call-control error", exc)
            return
        try:
            for command in commands:
                self._execute(command)
        except Exception as exc:
            self._fail("SIP stack error", exc)

    def _fail(self, what: str, exc: Exception) -> None:
        """A bug or a broken SIP stack, not a call failure: drop both legs, report EngineError."""
        log.exception("%s", what, exc_info=exc)
        self._dead = True
        self._disconnect_all()
        self.sink.broken(exc)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.next_deadline()
        if deadline is not None and not self._dead:
            self._timer = Timeout(self._on_timer, max(0.0, deadline - self.dialling.clock()))

    # ---- commands -> sippy -------------------------------------------------------------------

    def _execute(self, command: Command) -> None:
        if isinstance(command, Report):
            self.sink.progress(self._with_dialog(command.progress))
        elif isinstance(command, Finished):
            self.sink.finished(command.outcome)
        elif isinstance(command, Originate):
            self._originate(command)
        else:
            log.debug("-> %s", type(command).__name__)
            self._uas[command.leg].recvEvent(_to_sippy(command))
            if isinstance(command, Reoffer):  # a re-INVITE took a CSeq: what a BYE needs changed
                self._refresh_dialog(command.leg)

    # ---- the dialog a restart would need to end a leg -----------------------------------------

    def _with_dialog(self, progress: ProgressEvent) -> ProgressEvent:
        """The leg's step, with its dialog as it now stands (none once the leg has ended)."""
        role = progress.leg
        if role is None or progress.state is LegState.ENDED or role not in self._uas:
            return progress
        self._reported[role] = progress.state
        dialog = read_dialog(self._uas[role], self.dialling.local, confirmed=progress.state in _CONFIRMED)
        return dataclasses.replace(progress, dialog=dialog)

    def _refresh_dialog(self, role: LegRole) -> None:
        state = self._reported.get(role)
        if state is None or state is LegState.ENDED:
            return
        dialog = read_dialog(self._uas[role], self.dialling.local, confirmed=state in _CONFIRMED)
        if dialog is not None:
            at = self.dialling.clock()
            self.sink.progress(
                ProgressEvent(callback_id=self.id, leg=role, state=state, at=at, dialog=dialog, refresh=True)
            )

    def _originate(self, cmd: Originate) -> None:
        d = self.dialling
        host, port = d.next_hop(cmd.number)
        log.info("%s: INVITE %s via %s:%d", cmd.leg.value, cmd.number, host, port)
        ua = UA(d.sip_config, event_cb=self._on_sippy_event, nh_address=(host, port),
                username=d.username, password=d.password)  # fmt: skip
        self._uas[cmd.leg] = ua
        body = MsgBody(cmd.sdp) if cmd.sdp is not None else None  # None: late offer (RFC 3725)
        user, display = from_identity(cmd.caller_id)
        data = (SipCallId(), user, cmd.number, body, None, display)
        ua.recvEvent(_Invite(data, d.from_domain))

    def _disconnect_all(self) -> None:
        for ua in self._uas.values():
            try:
                ua.recvEvent(CCEventDisconnect())
            except Exception:  # best effort while failing
                log.debug("disconnect failed", exc_info=True)


def _to_sippy(command: Command) -> Any:
    if isinstance(command, Ack):  # the ACK sippy is holding for a 2xx that carried an offer
        return CCEventConnect((200, "OK", MsgBody(command.sdp)))
    if isinstance(command, Reoffer):
        return CCEventUpdate(MsgBody(command.sdp))
    if isinstance(command, Cancel | Bye):  # sippy picks CANCEL or BYE from the dialog state
        return CCEventDisconnect()
    raise TypeError(f"not a SIP command: {command!r}")
