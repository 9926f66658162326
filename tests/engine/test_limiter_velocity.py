"""Output safety (limiter, NaN guard, master gain) and velocity curves."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from synth.engine.limiter import PeakLimiter, db_to_gain
from synth.engine.velocity import velocity_table

SR = 48000


def test_limiter_keeps_peaks_below_ceiling_and_recovers():
    lim = PeakLimiter(SR, 512, 2, master_gain_db=0.0)
    ceiling = db_to_gain(-0.3)
    rng = np.random.default_rng(0)
    t = np.arange(512 * 200) / SR
    loud = (4.0 * np.sin(2 * np.pi * 220 * t) * (1 + rng.random(len(t)) * 0.2)).astype(np.float32)
    outs = []
    for i in range(200):
        block = np.repeat(loud[i * 512:(i + 1) * 512, None], 2, axis=1)
        assert lim.process(block)
        outs.append(block.copy())
    out = np.concatenate(outs)
    assert np.max(np.abs(out)) <= ceiling + 1e-6
    assert np.max(np.abs(out[-SR // 10:])) > 0.9 * ceiling  # limits, does not mute
    # after the loud part, a quiet signal comes back to unity gain (release)
    quiet = (0.3 * np.sin(2 * np.pi * 220 * t[: 512 * 100])).astype(np.float32)
    for i in range(100):
        block = np.repeat(quiet[i * 512:(i + 1) * 512, None], 2, axis=1)
        lim.process(block)
    assert abs(np.max(np.abs(block)) - 0.3) < 0.01


def test_limiter_gain_changes_are_smooth():
    lim = PeakLimiter(SR, 256, 1, master_gain_db=0.0)
    t = np.arange(256 * 40) / SR
    x = (np.where(t < 0.1, 0.2, 3.0) * np.sin(2 * np.pi * 100 * t)).astype(np.float32)
    out = []
    for i in range(40):
        b = x[i * 256:(i + 1) * 256, None].copy()
        lim.process(b)
        out.append(b[:, 0])
    y = np.concatenate(out)
    # a step from 0.2 to 3.0 amplitude: output never jumps by more than the input signal's own slope allows
    assert np.max(np.abs(np.diff(y))) < 3.0 * 2 * np.pi * 100 / SR * 1.5


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_blocks_become_silence(bad):
    lim = PeakLimiter(SR, 128, 2)
    block = np.full((128, 2), 0.1, np.float32)
    block[37, 1] = bad
    assert lim.process(block) is False
    assert np.all(block == 0) and lim.bad_blocks == 1
    good = np.full((128, 2), 0.1, np.float32)
    assert lim.process(good) and np.all(np.isfinite(good))


def test_master_gain_default_is_safe_and_slews():
    lim = PeakLimiter(SR, 512, 1)
    block = np.ones((512, 1), np.float32) * 0.5
    lim.process(block)
    assert abs(block[0, 0] - 0.5 * db_to_gain(-12)) < 1e-4
    lim.set_master_gain_db(0.0)
    block = np.ones((512, 1), np.float32) * 0.5
    lim.process(block)
    assert np.all(np.diff(block[:, 0]) >= 0) and block[-1, 0] < 0.5  # ramps, no jump


def test_limiter_is_allocation_free():
    lim = PeakLimiter(SR, 2048, 2)
    block = np.random.default_rng(1).normal(0, 3, (2048, 2)).astype(np.float32)
    work = block.copy()
    lim.process(work)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(100):
            np.copyto(work, block)
            lim.process(work)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 4096 and after - before < 1024


def test_velocity_curves():
    lin, soft, hard = velocity_table("linear"), velocity_table("soft"), velocity_table("hard")
    for table in (lin, soft, hard):
        assert table.shape == (128,) and table.dtype == np.float32
        assert table[0] == 0 and table[127] == pytest.approx(1.0)
        assert np.all(np.diff(table) > 0)
    assert np.all(soft[1:127] > lin[1:127]) and np.all(hard[1:127] < lin[1:127])
    assert lin[64] == pytest.approx(64 / 127)
    with pytest.raises(ValueError, match="unknown velocity curve"):
        velocity_table("medium")
