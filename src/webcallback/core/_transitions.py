"""The leg state machine as data. Everything that decides which transition is legal lives here.

A leg is one SIP dialog we originate. Its phases are finer than the public `LegState` (which the
dispatcher and the CDR see): `PHASE_TO_STATE` maps them. Triggers are both what the far end did
(`ANSWER`, `FAIL`, `REMOTE_BYE`, ...) and what we did (`DIAL`, `HOLD`, `REOFFER`, ...): the table
documents every legal step of a leg, whoever causes it. `docs/call-states.md` is drawn from
`TRANSITIONS` by `python -m webcallback.core.diagram`.
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Final

from webcallback.domain import LegState


class Phase(enum.StrEnum):
    IDLE = "idle"  # not dialled (yet)
    CALLING = "calling"  # INVITE sent without SDP, no 18x yet
    RINGING = "ringing"  # 18x received
    ANSWERED = "answered"  # 200 received; we still owe its ACK (or, Flow I, bridge at once)
    HELD = "held"  # ACKed with a black-hole answer: up, but hears nothing
    REOFFERING = "reoffering"  # re-INVITE with the other leg's SDP is in flight
    LINKED = "linked"  # accepted the other leg's SDP (early media or final); not yet bridged
    BRIDGED = "bridged"  # media flows between the two far ends
    ENDED = "ended"


class Trigger(enum.StrEnum):
    # ours
    DIAL = "dial"  # INVITE sent
    SKIP = "skip"  # never dialled: the callback ended first
    HOLD = "hold"  # ACK with black-hole SDP
    REOFFER = "reoffer"  # re-INVITE with the other leg's SDP
    BRIDGE = "bridge"  # both sides of the media path are set
    CANCEL = "cancel"
    BYE = "bye"
    # theirs
    TRYING = "trying"  # 100
    RING = "ring"  # 18x
    ANSWER = "answer"  # 2xx to the INVITE
    FAIL = "fail"  # final non-2xx to the INVITE
    REOFFER_OK = "reoffer-ok"  # 2xx to our re-INVITE
    REOFFER_FAIL = "reoffer-fail"  # non-2xx to our re-INVITE
    REMOTE_BYE = "remote-bye"


P, T = Phase, Trigger

# Phase -> trigger -> next phase. A pair that is missing is illegal.
# ENDED absorbs what the far end may still send after we cancelled or hung up (a 487, a 200 that
# crossed our CANCEL, a late BYE): sippy completes those transactions itself.
TRANSITIONS: Final = MappingProxyType(
    {
        P.IDLE: {T.DIAL: P.CALLING, T.SKIP: P.ENDED},
        P.CALLING: {
            T.TRYING: P.CALLING,
            T.RING: P.RINGING,
            T.ANSWER: P.ANSWERED,
            T.FAIL: P.ENDED,
            T.CANCEL: P.ENDED,
        },
        P.RINGING: {
            T.TRYING: P.RINGING,
            T.RING: P.RINGING,
            T.ANSWER: P.ANSWERED,
            T.FAIL: P.ENDED,
            T.CANCEL: P.ENDED,
        },
        P.ANSWERED: {T.HOLD: P.HELD, T.BRIDGE: P.BRIDGED, T.BYE: P.ENDED, T.REMOTE_BYE: P.ENDED},
        P.HELD: {T.REOFFER: P.REOFFERING, T.BYE: P.ENDED, T.REMOTE_BYE: P.ENDED},
        P.REOFFERING: {
            T.REOFFER_OK: P.LINKED,
            T.REOFFER_FAIL: P.HELD,
            T.BYE: P.ENDED,
            T.REMOTE_BYE: P.ENDED,
        },
        P.LINKED: {T.REOFFER: P.REOFFERING, T.BRIDGE: P.BRIDGED, T.BYE: P.ENDED, T.REMOTE_BYE: P.ENDED},
        P.BRIDGED: {T.BYE: P.ENDED, T.REMOTE_BYE: P.ENDED},
        P.ENDED: {
            T.TRYING: P.ENDED,
            T.RING: P.ENDED,
            T.ANSWER: P.ENDED,
            T.FAIL: P.ENDED,
            T.REOFFER_OK: P.ENDED,
            T.REOFFER_FAIL: P.ENDED,
            T.REMOTE_BYE: P.ENDED,
        },
    }
)

PHASE_TO_STATE: Final = MappingProxyType(
    {
        P.IDLE: LegState.IDLE,
        P.CALLING: LegState.TRYING,
        P.RINGING: LegState.RINGING,
        P.ANSWERED: LegState.ANSWERED,
        P.HELD: LegState.ANSWERED,
        P.REOFFERING: LegState.ANSWERED,
        P.LINKED: LegState.ANSWERED,
        P.BRIDGED: LegState.BRIDGED,
        P.ENDED: LegState.ENDED,
    }
)

RINGING_PHASES: Final = frozenset({P.CALLING, P.RINGING})
UP_PHASES: Final = frozenset({P.ANSWERED, P.HELD, P.REOFFERING, P.LINKED, P.BRIDGED})
# Where a leg's session timer runs (RFC 4028): ACKed and no re-INVITE of ours in flight (in
# ANSWERED the 2xx awaits its ACK; in REOFFERING the re-INVITE's answer refreshes the session).
TIMED_PHASES: Final = frozenset({P.HELD, P.LINKED, P.BRIDGED})
