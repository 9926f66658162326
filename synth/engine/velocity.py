"""Velocity curves: MIDI velocity (0-127) -> linear amplitude gain, as 128-entry tables.

A curve is ``gain = (velocity / 127) ** exponent`` (velocity 0 -> 0):

- ``linear`` (exponent 1.0): amplitude proportional to velocity; velocity 64 is about -6 dB, velocity 16 -18 dB.
- ``soft`` (exponent 0.5): for light-touch keyboards; soft playing is already fairly loud (64 -> -3 dB).
- ``hard`` (exponent 2.0): for heavy-action keyboards; it takes a hard strike to get loud (64 -> -12 dB).

Tables are computed once; the audio thread only indexes them.
"""

from __future__ import annotations

import numpy as np

CURVES: dict[str, float] = {"linear": 1.0, "soft": 0.5, "hard": 2.0}


def velocity_table(curve: str = "linear") -> np.ndarray:
    """float32[128] gains for the named curve; raises ValueError for unknown names."""
    try:
        exponent = CURVES[curve]
    except KeyError:
        raise ValueError(f"unknown velocity curve {curve!r}; choose one of {sorted(CURVES)}") from None
    table = (np.arange(128, dtype=np.float64) / 127.0) ** exponent
    table[0] = 0.0
    return table.astype(np.float32)
