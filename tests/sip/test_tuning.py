from __future__ import annotations

import time

import pytest
import sippy.Time.MonoTime as monotime
from sippy.Time.MonoTime import MonoTime
from sippy.UA import UA
from sippy.Udp_server import Udp_server_opts

from webcallback.domain import EngineError
from webcallback.engines.sip import tuning


def test_apply_sets_sippy_knobs() -> None:
    before = (Udp_server_opts.nworkers, UA.godead_timeout)
    try:
        tuning.apply(2, 5.0)
        assert (Udp_server_opts.nworkers, UA.godead_timeout) == (2, 5.0)
        assert monotime.clock_getdtime is time.clock_gettime
        a, b = MonoTime(), MonoTime()
        assert 0 <= b.monot - a.monot < 0.1  # still a working monotonic clock
    finally:
        tuning.apply(*before)


@pytest.mark.parametrize(("workers", "linger"), [(0, 5.0), (1, 0.0)])
def test_apply_rejects_bad_values(workers: int, linger: float) -> None:
    with pytest.raises(EngineError):
        tuning.apply(workers, linger)
