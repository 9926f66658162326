"""Issue 19 on the real bus: a held note changes timbre while the pad is dragged, with nothing prepared.

The note source is the demo ``SineNoteSource`` with a simulated model cost of 1.5 s per note, so exact notes cannot
follow the finger; no grid exists. The engine plays through JACK, a recorder captures it, and the recorded spectral
centroid must rise along a left-to-right drag (the demo timbre brightens with x), without a silent moment.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from synth.bench.morph import centroid
from tests.conftest import unique_name
from tests.engine.slow_source import SlowSineNoteSource
from tests.jackbus import Recorder, jack_output_device, new_output_ports, output_ports

pytestmark = pytest.mark.jack


def wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()


@pytest.mark.parametrize("audio_process", [False, True], ids=["in_process", "audio_host"])
def test_held_note_follows_a_drag_on_a_fresh_cache(jack_server, audio_process):
    from synth.engine.engine import Engine

    source = SlowSineNoteSource(pitch_range=(55, 59), delay_per_note=1.5)
    before = output_ports()
    engine = Engine(source, sample_rate=48000, block_size=1024, device=jack_output_device(),
                    midi_client=unique_name("pgesam"), use_grid=False, audio_process=audio_process)
    rec = None
    try:
        engine.set_point(-1.0, 0.0)
        engine.start()
        # the recorder (a Python process callback) opens after the engine's MIDI clients: python-rtmidi opens its
        # JACK clients holding the GIL, which a Python-callback client already active can deadlock (bench morph)
        rec = Recorder(name=unique_name("morphrec"))
        rec.connect_from(*new_output_ports(before)[:2])
        engine.note_on(57, 100)
        assert wait(lambda: engine.slots[57].tag[1:] == ("exact",), 30), engine.meters()
        rec.start()
        time.sleep(0.3)
        calls = source.calls
        start_frame = rec.frame_time
        t0 = time.perf_counter()
        while (u := (time.perf_counter() - t0) / 3.0) <= 1.0:  # a 3 s drag, 60 moves a second
            x = -1.0 + 2.0 * u
            engine.set_point(x, 0.0)
            time.sleep(1 / 60)
        end_frame = rec.frame_time
        engine.set_point(1.0, 0.0)
        # previews followed the finger: the slow model was not asked for the points passed on the way
        assert source.calls - calls <= 2, source.calls - calls
        assert engine.worker.preview_notes >= 5
        assert wait(lambda: engine.slots[57].tag[1:] == ("exact",) and engine.worker.target == (1.0, 0.0), 30)
        time.sleep(0.2)
        audio = rec.audio(start_frame, end_frame)
        assert rec.covered(start_frame, end_frame) > 0.9
        # never silent during the drag (20 ms windows)
        win = 960
        rms = np.sqrt(np.mean(audio[: len(audio) // win * win].reshape(-1, win) ** 2, axis=1))
        assert rms.min() > 0.05 * rms.max(), rms.min()
        # the centroid follows the drag: six segments of the drag, brighter to the right
        cents = centroid(audio, 48000)
        seg = []
        for k in range(6):
            lo, hi = int(len(cents) * k / 6), int(len(cents) * (k + 1) / 6)
            seg.append(float(np.nanmedian(cents[lo:hi])))
        ranks = np.argsort(np.argsort(seg))
        spearman = float(np.corrcoef(ranks, np.arange(6))[0, 1])
        assert spearman >= 0.8, seg
        # and it moved as far as the exact notes at the two ends are apart
        ends = [float(np.nanmedian(centroid(engine.cache.prepare(source.preview((x, 0.0), [57])[0],
                                                                   source.sample_rate, 57).data[48000:96000])))
                for x in (-1.0, 1.0)]
        assert seg[-1] - seg[0] > 0.5 * (ends[1] - ends[0]) > 0, (seg, ends)
        assert engine.meters()["worker_error_count"] == 0
    finally:
        if rec is not None:
            rec.close()
        source.done.set()  # the worker's batch in progress ends now: stop() need not wait it out
        engine.stop()


def test_the_callbacks_gil_wait_is_measured(jack_server):
    """The meter `synth bench app` reads: every callback's wait for the interpreter, kept for percentiles."""
    from synth.engine.engine import Engine
    from synth.engine.sources import SineNoteSource

    engine = Engine(SineNoteSource(pitch_range=(60, 62)), sample_rate=48000, block_size=1024,
                    device=jack_output_device(), midi=False, use_grid=False)
    try:
        engine.start()
        assert wait(lambda: engine.audio.callbacks >= 20, 30)
        stats = engine.audio.gil_wait_stats()
        assert stats["callbacks"] >= 20
        assert 0.0 <= stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]
        assert stats["max_ms"] <= 1000 * engine.audio.max_gil_wait + 1e-3  # the ring holds the latest 8192
        later = engine.audio.gil_wait_stats(since=engine.audio.gil_count)
        assert later == {"callbacks": 0}
    finally:
        engine.stop()
