"""Process-wide performance settings of sippy, from the capacity study (`research/capacity.md`).

They change no SIP behaviour, only what it costs:
- sippy reads the monotonic clock through ctypes, which takes ~7 µs and drops the GIL twice per
  read (18-26 % of the reactor's CPU under load); `time.clock_gettime` reads the same clock in C.
- UDP helper threads: sippy starts 3 receivers and 3 senders; under the GIL one of each is
  cheaper (`engine.sip.udp_workers`).
- Finished UAs linger `UA.godead_timeout` seconds to absorb retransmissions (`engine.sip.linger`).
And one that does change behaviour: sippy binds its UDP socket with SO_REUSEADDR (and SO_REUSEPORT
with several receivers), so a second instance on the same port bound it too and silently took
half of the first one's replies. We bind plainly: a port in use is refused (EADDRINUSE). Our
receivers share one socket, so nothing needs the port twice.
The cyclic GC thresholds the study also recommends are the whole service's business, not the
engine's: see docs/engines.md.
"""

from __future__ import annotations

import time

import sippy.Time.MonoTime as monotime
from sippy.UA import UA
from sippy.Udp_server import Udp_server_opts

from webcallback.domain import EngineError


def apply(udp_workers: int, linger: float) -> None:
    """Call before the transaction manager is created (it starts the UDP threads)."""
    if udp_workers < 1:
        raise EngineError("engine.sip.udp_workers must be at least 1")
    if linger <= 0:
        raise EngineError("engine.sip.linger must be positive")
    monotime.clock_getdtime = time.clock_gettime  # same clock ids: 0 realtime, 4 monotonic raw
    Udp_server_opts.nworkers = udp_workers
    Udp_server_opts.flags = 0
    UA.godead_timeout = linger
