"""AudioOutput on the real JACK bus: every underflow is recorded with its context, so a bench can tell a late callback
(ours: the interpreter or the mixer) from a late machine."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.jackbus import jack_output_device

pytestmark = pytest.mark.jack


def test_underflows_are_recorded_with_the_late_callback_as_their_cause(jack_server):
    from synth.engine.audio_io import AudioOutput

    late_at = {40}  # callback numbers that overrun: each sleeps 3 blocks
    calls = [0]

    def render(out: np.ndarray) -> None:
        out.fill(0.0)
        if calls[0] in late_at:
            time.sleep(3 * out.shape[0] / 48000)
        calls[0] += 1

    audio = AudioOutput(render, device=jack_output_device(), sample_rate=48000, block_size=1024)
    audio.start()
    try:
        deadline = time.monotonic() + 20
        while (audio.callbacks < 120 or audio.xruns == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        audio.stop()
    assert audio.xruns >= 1, "a callback three blocks late must underflow"
    records = audio.xrun_context()
    assert len(records) == audio.xruns
    # PortAudio flags a callback after the late one: the record looks back over the last few callbacks. Other
    # underflows may come with it (the machine's own: a JACK client activating, a stall of this shared VM), each
    # with its own record; the one after callback 40 must name our late callback.
    ours = [r for r in records if 40 < r["callback"] <= 40 + 6]
    assert ours and ours[0]["load"] > 2.0 and ours[0]["cause"] == "interpreter", records
    assert audio.xrun_context(since=audio.xruns) == []


def test_a_running_engine_keeps_the_collector_off_its_long_lived_objects(jack_server):
    """A full collection walks every tracked object holding the GIL (115 ms in the app, an underflow at any block
    size): the engine freezes what exists when it starts and unfreezes when it stops."""
    import gc

    from synth.engine.engine import Engine
    from synth.engine.sources import SineNoteSource
    from tests.conftest import unique_name

    engine = Engine(SineNoteSource(pitch_range=(60, 62)), sample_rate=48000, block_size=1024,
                    device=jack_output_device(), midi_client=unique_name("gcfreeze"), use_grid=False)
    try:
        engine.start()
        assert gc.get_freeze_count() > 1000
    finally:
        engine.stop()
    assert gc.get_freeze_count() == 0
