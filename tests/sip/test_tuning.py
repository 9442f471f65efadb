from __future__ import annotations

import time

import pytest

from webcallback.domain import EngineError
from webcallback.engines.sip import _sippy
from webcallback.engines.sip._sippy import UA, MonoTime, Udp_server_opts


def test_apply_sets_sippy_knobs() -> None:
    before = (Udp_server_opts.nworkers, UA.godead_timeout)
    try:
        _sippy.apply(2, 5.0)
        assert (Udp_server_opts.nworkers, UA.godead_timeout) == (2, 5.0)
        assert _sippy.monotime.clock_getdtime is time.clock_gettime
        a, b = MonoTime(), MonoTime()
        assert 0 <= b.monot - a.monot < 60  # still a monotonic clock, in seconds
    finally:
        _sippy.apply(*before)


@pytest.mark.parametrize(("workers", "linger"), [(0, 5.0), (1, 0.0)])
def test_apply_rejects_bad_values(workers: int, linger: float) -> None:
    with pytest.raises(EngineError):
        _sippy.apply(workers, linger)
