"""MIDI CC control of the pad's X and Y (any CC, mod wheel CC1 included), with MIDI learn and smoothing.

The audio callback only stores each CC's last value and a wrapping count in the engine (``cc_values``,
``cc_counts``); this object is polled from the GUI timer or the CLI loop, so the smoothing and the pad move never
run in the audio thread. 14-bit: a bound CC 0-31 whose LSB partner (CC+32) has arrived since binding is read as
MSB*128+LSB; otherwise 7-bit.
"""

from __future__ import annotations

import math

AXES = ("x", "y")
PROGRAM_SLOT = 128  # cc_counts index of program changes


class CCControl:
    def __init__(self, tau: float = 0.04) -> None:
        self.bindings: dict[str, int | None] = {axis: None for axis in AXES}
        self.learning: str | None = None
        self.tau = float(tau)  # smoothing time constant (s): a 7-bit knob's steps glide instead of stepping
        self._seen: bytes | None = None  # counts at the last poll (None: not polled yet)
        self._fine: dict[str, bool] = {axis: False for axis in AXES}
        self._target: dict[str, float | None] = {axis: None for axis in AXES}
        self._smooth: dict[str, float | None] = {axis: None for axis in AXES}

    def restart(self) -> None:
        """A new engine store: its counts are not changes."""
        self._seen = None

    def learn(self, axis: str) -> None:
        """The next CC that arrives binds to ``axis``."""
        if axis not in AXES:
            raise ValueError(f"unknown pad axis {axis!r}; known: {AXES}")
        self.learning = axis

    def bind(self, axis: str, cc: int | None) -> None:
        if cc is not None and not 0 <= int(cc) <= 127:
            raise ValueError(f"MIDI CC must be 0-127, got {cc}")
        self.bindings[axis] = None if cc is None else int(cc)
        self._fine[axis] = False
        self._target[axis] = self._smooth[axis] = None

    def poll(self, values, counts, dt: float) -> tuple[dict[str, float], bool]:
        """Read the engine's CC store. Returns ({axis: smoothed value 0-1} for the axes still moving, program
        changed?)."""
        counts = bytes(counts)
        if self._seen is None:  # what arrived before the first poll (another binding's session) is not a move
            self._seen = counts
        changed = [cc for cc in range(128) if counts[cc] != self._seen[cc]]
        program = counts[PROGRAM_SLOT] != self._seen[PROGRAM_SLOT]
        self._seen = counts
        if self.learning is not None and changed:
            msb = [cc for cc in changed if not 32 <= cc < 64 or cc - 32 not in changed]
            self.bind(self.learning, (msb or changed)[0])
            self.learning = None
        for axis, cc in self.bindings.items():
            if cc is not None and cc in changed:
                self._target[axis] = self._read(axis, cc, values, changed)
            elif cc is not None and cc < 32 and cc + 32 in changed and self._fine[axis]:
                self._target[axis] = self._read(axis, cc, values, changed)
        return self._glide(dt), program

    def _read(self, axis: str, cc: int, values, changed: list[int]) -> float:
        if cc < 32 and cc + 32 in changed:
            self._fine[axis] = True  # the controller sends LSBs: read both bytes from now on
        if self._fine[axis]:
            return (values[cc] * 128 + values[cc + 32]) / 16383.0
        return values[cc] / 127.0

    def _glide(self, dt: float) -> dict[str, float]:
        """One-pole smoother toward each target; an axis stops reporting once it has arrived."""
        alpha = 1.0 - math.exp(-max(dt, 0.0) / self.tau) if self.tau > 0 else 1.0
        moved = {}
        for axis, target in self._target.items():
            if target is None:
                continue
            now = self._smooth[axis]
            now = target if now is None else now + alpha * (target - now)
            if abs(target - now) < 1e-4:
                now, self._target[axis] = target, None
            self._smooth[axis] = now
            moved[axis] = now
        return moved

    def to_dict(self) -> dict:
        return {axis: cc for axis, cc in self.bindings.items()}

    def load(self, data) -> None:
        """Bindings from a session; anything that is not a CC number 0-127 is left unbound."""
        if not isinstance(data, dict):
            return
        for axis in AXES:
            cc = data.get(axis)
            self.bind(axis, cc if isinstance(cc, int) and 0 <= cc <= 127 else None)


def to_map(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low + value * (high - low)
