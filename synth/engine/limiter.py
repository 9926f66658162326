"""Output safety: master gain, a lookahead-free peak limiter, NaN/inf guard and a peak meter.

Why lookahead-free: a lookahead limiter delays the whole output by its window, and latency is what players of neural
instruments complain about most. Instead the gain follows the block peak: when a block would exceed the ceiling, the
gain ramps down within ``attack`` seconds to the level that brings the block's peak to the ceiling, and recovers
smoothly (``release``) afterwards; the few samples inside the attack ramp that would still poke above the ceiling
are clipped, so the ceiling (-0.3 dBFS by default) is a guarantee, not a tendency. With the default master gain
(-12 dBFS) the limiter only acts when many loud voices pile up.

Real-time constraints: ``process`` runs in the audio callback on preallocated scratch arrays (no allocation, no
locks). A block that holds any NaN or inf is replaced by silence and counted, so a misbehaving model can never send
full-scale noise to the speakers.
"""

from __future__ import annotations

import math

import numpy as np


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


def gain_to_db(gain: float) -> float:
    return 20.0 * math.log10(gain) if gain > 0 else float("-inf")


def _scale_columns(block: np.ndarray, gain: np.ndarray) -> None:
    """block[:, c] *= gain for every channel. (``block *= gain[:, None]`` makes numpy allocate a broadcast buffer.)"""
    for c in range(block.shape[1]):
        col = block[:, c]
        np.multiply(col, gain, out=col)


class PeakLimiter:
    """In-place master gain + limiter over float32 ``[frames, channels]`` blocks."""

    def __init__(self, sample_rate: int, max_frames: int, channels: int = 2, *, ceiling_db: float = -0.3,
                 master_gain_db: float = -12.0, attack: float = 0.001, release: float = 0.15,
                 gain_slew: float = 0.05) -> None:
        self.sample_rate = int(sample_rate)
        self.ceiling = db_to_gain(ceiling_db)
        self.master_gain = db_to_gain(master_gain_db)  # target; the applied gain slews toward it
        self._master_now = self.master_gain
        self.attack = float(attack)
        self.release = float(release)
        self.gain_slew = float(gain_slew)
        self._gain = 1.0  # limiter gain reduction (1 = none)
        self.peak = 0.0  # max |sample| after limiting since the last reset_peak()
        self.reduction = 1.0  # smallest limiter gain since the last reset_peak()
        self.bad_blocks = 0  # blocks replaced by silence because of NaN/inf
        self._ramp = np.arange(1, max_frames + 1, dtype=np.float32)
        self._g = np.empty(max_frames, dtype=np.float32)
        self._abs = np.empty((max_frames, channels), dtype=np.float32)

    def set_master_gain_db(self, db: float) -> None:
        self.master_gain = db_to_gain(min(db, 6.0))

    def reset_peak(self) -> tuple[float, float]:
        """Return (peak, smallest limiter gain) since the last call and start a new measurement."""
        peak, red = self.peak, self.reduction
        self.peak, self.reduction = 0.0, 1.0
        return peak, red

    def process(self, block: np.ndarray) -> bool:
        """Apply master gain and limiting in place. Returns False when the block was not finite (now silence)."""
        frames = block.shape[0]
        total = float(np.sum(block))
        if not math.isfinite(total):
            block.fill(0.0)
            self.bad_blocks += 1
            return False
        g = self._g[:frames]
        ramp = self._ramp[:frames]
        # master gain, slewed per sample over gain_slew seconds (no zipper noise when the user turns the knob)
        target = self.master_gain
        now = self._master_now
        if target != now:
            step = (target - now) * min(1.0, frames / max(1.0, self.gain_slew * self.sample_rate))
            np.multiply(ramp, step / frames, out=g)
            np.add(g, now, out=g)
            self._master_now = now + step
            _scale_columns(block, g)
        elif now != 1.0:
            block *= now

        absb = self._abs[:frames, : block.shape[1]]
        np.abs(block, out=absb)
        peak = float(absb.max()) if frames else 0.0
        need = self.ceiling / peak if peak > self.ceiling else 1.0
        cur = self._gain
        if need < cur:  # attack: reach the needed gain within `attack` seconds, then hold it for the block
            n = max(1, min(frames, int(self.attack * self.sample_rate)))
            np.multiply(ramp, (need - cur) / n, out=g)
            np.add(g, cur, out=g)
            np.maximum(g, need, out=g)
            new = need
        else:  # release: exponential recovery toward 1 (or the needed gain), linear within the block
            coef = math.exp(-frames / max(1.0, self.release * self.sample_rate))
            new = min(need, 1.0 - (1.0 - cur) * coef)
            np.multiply(ramp, (new - cur) / max(1, frames), out=g)
            np.add(g, cur, out=g)
        self._gain = new
        if new < 1.0 or cur < 1.0:
            _scale_columns(block, g)
        np.minimum(block, self.ceiling, out=block)  # np.clip allocates for scalar bounds; these do not
        np.maximum(block, -self.ceiling, out=block)
        np.abs(block, out=absb)
        out_peak = float(absb.max()) if frames else 0.0
        if out_peak > self.peak:
            self.peak = out_peak
        if new < self.reduction:
            self.reduction = new
        return True
