"""One callback inside the reactor thread: feeds sippy's events to the core, runs its commands.

Everything here runs in the sippy reactor thread. The driver owns one `CallbackSession` and up to
two sippy `UA`s (one per leg). It keeps a single sippy timer armed at the session's next deadline.
sippy may call us back while we are still carrying out commands (a UA can report an event from
inside `recvEvent`), so incoming events are queued and handled one at a time, in order.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webcallback.core import CallbackSession, IllegalTransition
from webcallback.core import events as ev
from webcallback.core._transitions import RINGING_PHASES
from webcallback.core.commands import (
    Ack,
    Bye,
    Cancel,
    Command,
    Finished,
    Originate,
    Refresh,
    Reoffer,
    Report,
)
from webcallback.core.session_timer import Headers
from webcallback.core.trunks import Trunk, TrunkSet
from webcallback.domain import CallOutcome, EndedBy, LegRole, LegState, ProgressEvent
from webcallback.engines.sip import unreachable
from webcallback.engines.sip._sippy import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventPreConnect,
    CCEventRedirect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
    FinalResponse,
    InDialogAnswer,
    InDialogRequest,
    LegUA,
    MsgBody,
    SipCallId,
    Timeout,
    header_fields,
    send_refresh,
)
from webcallback.engines.sip.addressing import NextHop, from_identity
from webcallback.engines.sip.dialogs import read_dialog
from webcallback.engines.sip.failover import Router
from webcallback.engines.sip.in_dialog import ALLOW_HEADER
from webcallback.engines.sip.in_dialog import answer as answer_in_dialog
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
    # several trunks with failover (engine.sip.trunks); None: every leg goes to `next_hop`
    trunks: TrunkSet | None = None
    trunk_silence: float = 0.0
    rng: random.Random = dataclasses.field(default_factory=random.Random)

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

    def __init__(self, data: tuple[Any, ...], from_domain: str | None, headers: Headers) -> None:
        super().__init__(data)
        self.from_domain = from_domain
        self.extra_headers = header_fields(headers)  # kept on a 401/407 retry (req_extra_headers)

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
        self._call_ids: dict[LegRole, str] = {}
        self._invite_headers: dict[LegRole, Headers] = {}  # each leg's INVITE header fields (ours)
        d = dialling
        self._router = Router(d.trunks, d.clock, d.trunk_silence, d.rng) if d.trunks is not None else None
        self._reported: dict[LegRole, LegState] = {}  # each leg's last reported state
        self._sdp: dict[LegRole, str | None] = {}  # each leg's INVITE offer, for the next trunk
        self._timer: Any = None
        self._inbox: deque[Callable[[], list[Command]]] = deque()
        self._busy = False
        self._dead = False
        # per leg, from its final responses: the Session-Expires of the 2xx the next event is
        # about, the far end's Allow, whether a refresh of ours is in flight
        self._answer_se: dict[LegRole, str | None] = {}
        self._allow: dict[LegRole, frozenset[str]] = {}
        self._refreshing: set[LegRole] = set()

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
        if self._router is not None and self._trunk_event(role, event):
            return
        # Read the event against the leg's phase when it is handled, not when it arrives: events
        # queued behind the current step may see a phase that step has not reached yet.
        answered = isinstance(event, CCEventConnect | CCEventPreConnect)
        se = self._answer_se.pop(role, None) if answered else None
        self._step(lambda: self._receive(_with_timer(to_core(event, role, self.session.phase(role)), se)))

    # ---- what sippy's LegUA shows us first (reactor thread, inside sippy) ---------------------

    def _on_final(self, role: LegRole, final: FinalResponse) -> Headers | None:
        """A final response to an INVITE of the leg; headers to retry a 422 with, else None."""
        if final.allow is not None:
            self._allow[role] = final.allow
        if 200 <= final.code < 300:
            self._answer_se[role] = final.session_expires
        elif final.code == 422 and final.initial:
            retry = self.session.retry_after_422(role, final.min_se)
            if retry is not None:
                log.info("%s: 422, retrying with Min-SE %s", role.value, final.min_se)
                return (*retry, ALLOW_HEADER)
        return None

    def _on_request(self, role: LegRole, req: InDialogRequest) -> InDialogAnswer | None:
        leg = self.session.legs[role]
        reply, terms = answer_in_dialog(req, leg.policy, role in self._refreshing)
        if reply is not None:
            log.debug("%s: %s answered %d", role.value, req.method, reply.code)
        if terms is not None:
            self._feed(ev.RefreshReceived(leg=role, terms=terms))
        return reply

    def _refresh(self, cmd: Refresh) -> None:
        role = cmd.leg
        method = "UPDATE" if "UPDATE" in self._allow.get(role, frozenset()) else "INVITE"
        log.debug("%s: session refresh by %s", role.value, method)
        self._refreshing.add(role)
        send_refresh(self._uas[role], method, (*cmd.headers, ALLOW_HEADER),
                     functools.partial(self._refresh_answered, role))  # fmt: skip
        self._refresh_dialog(role)  # the refresh took a CSeq

    def _refresh_answered(self, role: LegRole, final: FinalResponse) -> None:
        self._refreshing.discard(role)
        if final.allow is not None:
            self._allow[role] = final.allow
        event: ev.Event
        if 200 <= final.code < 300:
            event = ev.RefreshAnswered(leg=role, session_expires=final.session_expires)
        else:
            log.info("%s: session refresh answered %d", role.value, final.code)
            event = ev.RefreshFailed(leg=role, code=final.code, reason=final.reason, min_se=final.min_se)
        # sippy tells us before it ACKs the response: act once the ACK has left (a BYE after it)
        Timeout(functools.partial(self._feed, event), 0.0)

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
            progress = command.progress
            if progress.ended_by is EndedBy.SESSION_EXPIRED:
                log.info("%s: session expired (RFC 4028)", progress.leg)
            if self._router is not None and progress.leg is not None and progress.state is LegState.ENDED:
                attempts = self._router.leg_over(progress.leg, progress.reason, progress.sip_code)
                progress = dataclasses.replace(progress, attempts=attempts)
            self.sink.progress(self._with_dialog(progress))
        elif isinstance(command, Finished):
            if self._router is not None:
                for role, route in self._router.routes.items():
                    log.info("%s: trunk attempts %s", role.value,
                             [(a.trunk, a.number, a.code, a.result) for a in route.attempts])  # fmt: skip
            for call_id in self._call_ids.values():
                unreachable.forget(call_id)
            self.sink.finished(command.outcome)
        elif isinstance(command, Originate):
            self._originate(command)
        elif isinstance(command, Refresh):
            self._refresh(command)
        else:
            log.debug("-> %s", type(command).__name__)
            if command.leg not in self._uas:  # its INVITE still waits for the trunk's max_cps
                return
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
        self._sdp[cmd.leg] = cmd.sdp
        self._invite_headers[cmd.leg] = (*cmd.headers, ALLOW_HEADER)  # kept for the next trunk
        if self._router is not None:
            self._router.begin(cmd.leg, cmd.number, cmd.caller_id, self.session.spec.ring_timeout)
            self._next_trunk(cmd.leg, first=True)
            return
        d = self.dialling
        host, port = d.next_hop(cmd.number)
        log.info("%s: INVITE %s via %s:%d", cmd.leg.value, cmd.number, host, port)
        ua = LegUA(d.sip_config, event_cb=self._on_sippy_event, nh_address=(host, port),
                   username=d.username, password=d.password)  # fmt: skip
        ua.on_request = functools.partial(self._on_request, cmd.leg)
        ua.on_final = functools.partial(self._on_final, cmd.leg)
        self._uas[cmd.leg] = ua
        body = MsgBody(cmd.sdp) if cmd.sdp is not None else None  # None: late offer (RFC 3725)
        user, display = from_identity(cmd.caller_id)
        call_id = SipCallId()
        self._call_ids[cmd.leg] = str(call_id)
        unreachable.watch(str(call_id), lambda why: self._on_unreachable(cmd.leg, ua, why))
        data = (call_id, user, cmd.number, body, None, display)
        ua.recvEvent(_Invite(data, d.from_domain, self._invite_headers[cmd.leg]))

    def _on_unreachable(self, role: LegRole, ua: Any, why: str) -> None:
        """ICMP said our INVITE cannot be delivered: the leg fails now, not at Timer B."""
        current: Any = self._uas.get(role)
        if current is not ua or self.session.phase(role) not in RINGING_PHASES:
            return
        log.info("%s: next hop unreachable: %s", role.value, why)
        if self._router is not None and self._router.should_fail_over(role, None, EndedBy.NETWORK):
            self._fail_over(role, f"unreachable: {why}", None)
            return
        self._feed(ev.Failed(leg=role, code=None, reason=f"unreachable: {why}", by=EndedBy.NETWORK))
        ua.recvEvent(CCEventDisconnect())  # stops sippy's INVITE (it would retransmit to Timer B)

    # ---- several trunks (failover.py decides; this only drives sippy) ------------------------

    def _trunk_event(self, role: LegRole, event: Any) -> bool:
        """Note what the current trunk said; True when its failure is failed over (the core is
        not told)."""
        router = self._router
        assert router is not None
        if self.session.phase(role) not in RINGING_PHASES:
            return False
        if isinstance(event, CCEventRing):
            router.heard(role, event.getData()[0])
        elif isinstance(event, CCEventConnect | CCEventPreConnect):
            router.answered(role)
        elif isinstance(event, CCEventFail | CCEventRedirect | CCEventDisconnect):
            failed = to_core(event, role, self.session.phase(role))
            if isinstance(failed, ev.Failed) and router.should_fail_over(role, failed.code, failed.by):
                self._fail_over(role, failed.reason or "failed", failed.code, disconnect=False)
                return True
        return False

    def _fail_over(self, role: LegRole, why: str, code: int | None, *, disconnect: bool = True) -> None:
        router = self._router
        assert router is not None
        route = router.routes[role]
        log.info("%s: trunk %s failed (%s %s): next trunk", role.value,
                 route.attempts[-1].trunk if route.attempts else "?", code or "", why)  # fmt: skip
        route.end_attempt(f"failed over: {why}", code)
        ua = self._uas.pop(role, None)
        unreachable.forget(self._call_ids.pop(role, ""))
        if disconnect and ua is not None:
            ua.recvEvent(CCEventDisconnect())  # CANCEL it if it got a 100, else stop retransmitting
        self._next_trunk(role, first=False)

    def _next_trunk(self, role: LegRole, *, first: bool) -> None:
        router = self._router
        assert router is not None
        if router.next_attempt(role, self._dial_trunk, lambda: self._on_silence(role)):
            return
        last = router.routes[role].attempts[-1:] if not first else []
        code = last[0].code if last else None
        why = last[0].result if last else "no trunk can carry it (down, full, or not its prefix)"
        by = EndedBy.NETWORK if code is None else EndedBy.REMOTE
        self._feed(ev.Failed(leg=role, code=code, reason=why, by=by))

    def _on_silence(self, role: LegRole) -> None:
        router = self._router
        assert router is not None
        route = router.routes.get(role)
        if route is None or route.heard or self.session.phase(role) not in RINGING_PHASES:
            return
        if router.should_fail_over(role, None, EndedBy.TIMEOUT):
            self._fail_over(role, "no response", None)

    def _dial_trunk(self, role: LegRole, trunk: Trunk, user: str, headers: tuple[Any, ...],
                    anonymous: bool) -> None:  # fmt: skip
        d, settings = self.dialling, trunk.settings
        password = settings.password.reveal() if settings.password is not None else None
        log.info("%s: INVITE %s via trunk %s (%s:%d)", role.value, user, trunk.name, trunk.host, trunk.port)
        ua = LegUA(d.sip_config, event_cb=self._on_sippy_event, nh_address=(trunk.host, trunk.port),
                   username=settings.username, password=password)  # fmt: skip
        ua.on_request = functools.partial(self._on_request, role)
        ua.on_final = functools.partial(self._on_final, role)
        self._uas[role] = ua
        sdp = self._sdp.get(role)
        body = MsgBody(sdp) if sdp is not None else None
        route = self._router.routes[role] if self._router is not None else None
        caller_id = route.caller_id if route is not None else ""
        from_user, display = ("anonymous", "Anonymous") if anonymous else from_identity(caller_id)
        call_id = SipCallId()
        self._call_ids[role] = str(call_id)
        unreachable.watch(str(call_id), lambda why: self._on_unreachable(role, ua, why))
        invite = _Invite((call_id, from_user, user, body, None, display),
                         "anonymous.invalid" if anonymous else (d.from_domain or trunk.host),
                         self._invite_headers.get(role, (ALLOW_HEADER,)))  # fmt: skip
        if headers:  # the trunk's identity headers (P-Asserted-Identity, Privacy)
            invite.extra_headers = (*invite.extra_headers, *headers)
        ua.recvEvent(invite)

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
        event = CCEventUpdate(MsgBody(command.sdp))
        event.extra_headers = header_fields((*command.headers, ALLOW_HEADER))
        return event
    if isinstance(command, Cancel | Bye):  # sippy picks CANCEL or BYE from the dialog state
        return CCEventDisconnect()
    raise TypeError(f"not a SIP command: {command!r}")


def _with_timer(event: ev.LegEvent | None, session_expires: str | None) -> ev.LegEvent | None:
    """The 2xx's Session-Expires on the core event it became (sippy's events do not carry it)."""
    if isinstance(event, ev.Answered | ev.ReofferAnswered):
        return dataclasses.replace(event, session_expires=session_expires)
    return event
