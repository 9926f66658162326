"""``SineNoteSource`` with a simulated model cost that the test can cut short when it is done."""

from __future__ import annotations

import threading

from synth.engine.sources import SineNoteSource


class SlowSineNoteSource(SineNoteSource):
    """Like ``SineNoteSource(delay_per_note=...)``: each ``generate`` call costs ``delay_per_note`` seconds per note
    (the notes and ``calls`` are the base class's), but the wait ends early once ``done.set()`` is called: stopping a
    worker joins its generation thread, which would otherwise sit out the rest of a batch the test no longer needs
    (up to 4 notes x the delay). Set ``done`` only when the test has asserted what it needs."""

    def __init__(self, delay_per_note: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cost_per_note = float(delay_per_note)
        self.done = threading.Event()

    def generate(self, xy, pitches, velocity=100):
        notes = super().generate(xy, pitches, velocity)
        if self.cost_per_note > 0:
            self.done.wait(self.cost_per_note * len(pitches))
        return notes
