"""Velocity layers (issue 18): velocity selects the timbre, buffers per (pitch, layer), the worker's priorities.

The velocity-conditioned source here is the engine's demo source with ``velocity_layers``: like the retrained model,
it generates one timbre per layer (brighter and louder the harder the layer) and picks the layer nearest the asked
velocity (ties to the lower layer). Sources with one layer (every old bundle, the plain demo source) must play
exactly as before: the voice gain is the velocity curve alone.
"""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

from synth.engine.buffers import BufferSlot, prepare_note_buffer
from synth.engine.note_cache import NoteCache
from synth.engine.sources import SineNoteSource, velocity_layers_of
from synth.engine.velocity import layer_index_table, nearest_layer, velocity_gain_table, velocity_table
from synth.engine.voices import Mixer
from synth.engine.worker import GenerationWorker

SR = 48000
LAYERS = (40, 70, 100, 127)


def wait(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()


def brightness(audio: np.ndarray, f0: float, sr: int = SR) -> float:
    """Spectral centroid over f0 (1.0 = a pure fundamental) of a stretch of audio."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1.0 / sr)
    return float(np.sum(freqs * spectrum) / np.sum(spectrum) / f0)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio.astype(np.float64)))))


class RecordingSource(SineNoteSource):
    """Layered demo source that records (velocity, pitches) of each generate call; ``gate`` can hold a layer back."""

    def __init__(self, hold=(), **kw):
        super().__init__(**kw)
        self.log: list[tuple[int, list[int]]] = []
        self.points: list[tuple[float, float]] = []
        self.hold = set(hold)
        self.gate = threading.Event()

    def generate(self, xy, pitches, velocity=100):
        if nearest_layer(velocity, self.velocity_layers) in self.hold:
            self.gate.wait(30)
        self.log.append((int(velocity), list(pitches)))
        self.points.append((float(xy[0]), float(xy[1])))
        return super().generate(xy, pitches, velocity)


# ------------------------------------------------------------------------------------------- layers and gains


def test_nearest_layer_ties_go_to_the_lower_layer_like_the_model():
    assert [nearest_layer(v, LAYERS) for v in (1, 40, 55, 56, 85, 86, 113, 114, 127)] == [
        40, 40, 40, 70, 70, 100, 100, 127, 127]
    table = layer_index_table(LAYERS)
    assert len(table) == 128 and table[55] == 0 and table[56] == 1 and table[127] == 3
    assert layer_index_table((100,)) == (0,) * 128
    assert velocity_layers_of(SineNoteSource()) == (100,)  # sources without the attribute: one layer
    assert velocity_layers_of(SineNoteSource(velocity_layers=(127, 40, 70, 100))) == LAYERS


def test_one_layer_gain_is_the_curve_and_several_layers_divide_the_layer_level_out():
    for curve in ("linear", "soft", "hard"):
        np.testing.assert_array_equal(velocity_gain_table(curve, (100,)), velocity_table(curve))
        gains = velocity_gain_table(curve, LAYERS)
        curve_table = velocity_table(curve)
        for layer in LAYERS:  # at a layer's own velocity the voice plays the model's level of that layer
            assert gains[layer] == pytest.approx(1.0)
        assert gains[50] == pytest.approx(curve_table[50] / curve_table[40])
        assert gains[90] == pytest.approx(curve_table[90] / curve_table[100])
        assert gains[0] == 0.0


def test_layered_demo_source_is_brighter_and_louder_at_higher_layers():
    src = SineNoteSource(velocity_layers=LAYERS, duration=1.0)
    f0 = 440.0 * 2 ** ((60 - 69) / 12)
    notes = {v: src.generate((0.0, 0.0), [60], v)[0][2400:21600] for v in (40, 70, 100, 127)}
    ranks = [brightness(notes[v], f0, src.sample_rate) for v in (40, 70, 100, 127)]
    assert ranks == sorted(ranks) and ranks[-1] > 1.3 * ranks[0]
    levels = [rms(notes[v]) for v in (40, 70, 100, 127)]
    assert levels == sorted(levels)
    np.testing.assert_array_equal(src.generate((0.0, 0.0), [60], 52), src.generate((0.0, 0.0), [60], 40))
    assert src.hash != SineNoteSource(duration=1.0).hash  # the layered model is another model for the caches


# ------------------------------------------------------------------------------------------- the voices


def test_mixer_plays_each_layer_at_its_model_level_and_one_layer_as_before():
    src = SineNoteSource(velocity_layers=LAYERS, duration=1.0)
    buffers = {v: prepare_note_buffer(src.generate((0.0, 0.0), [60], v)[0], 24000, SR, 60, held_seconds=0.75)
               for v in LAYERS}

    def play(mixer, velocity, buf):
        out = np.zeros((512, 1), np.float32)
        mixer.note_on(60, velocity, buf)
        chunks = []
        for _ in range(40):
            mixer.render(out)
            chunks.append(out[:, 0].copy())
        mixer.all_sound_off()
        for _ in range(4):
            mixer.render(out)
        return np.concatenate(chunks)

    layered = Mixer(SR, 512)
    layered.set_velocity_layers(LAYERS)
    assert [layered.layer_index(v) for v in (40, 55, 56, 127)] == [0, 0, 1, 3]
    for v in LAYERS:  # v = layer: exactly the buffer (after the 3 ms attack)
        played = play(layered, v, buffers[v])
        np.testing.assert_allclose(played[2048:8192], buffers[v].data[2048:8192], atol=1e-6)
    single = Mixer(SR, 512)
    assert single.layer_index(127) == 0
    played = play(single, 64, buffers[100])
    np.testing.assert_allclose(played[2048:8192], velocity_table("linear")[64] * buffers[100].data[2048:8192],
                               atol=1e-6)


# ------------------------------------------------------------------------------------------- the engine


def test_engine_plays_v127_brighter_than_v40_and_stays_allocation_free():
    from synth.engine.engine import Engine

    src = SineNoteSource(pitch_range=(57, 63), duration=1.0, velocity_layers=LAYERS)
    engine = Engine(src, block_size=512, midi=False, use_grid=False)
    assert engine.velocity_layers == LAYERS and len(engine.layer_slots) == 4
    assert engine.slots is engine.layer_slots[2]  # the default (velocity 100) layer
    engine.worker.start()
    try:
        engine.worker.request(0.0, 0.0)
        assert wait(engine.worker.idle), engine.worker.errors
        assert engine.worker.progress() == (7 * 4, 7 * 4)
        out = np.zeros((512, 2), np.float32)
        f0 = 440.0 * 2 ** ((60 - 69) / 12)
        played = {}
        for velocity in (40, 127):
            engine.note_on(60, velocity)
            blocks = []
            for _ in range(40):
                engine.process_block(out)
                blocks.append(out[:, 0].copy())
            engine.note_off(60)
            for _ in range(30):
                engine.process_block(out)
            played[velocity] = np.concatenate(blocks)[4096:]
        assert brightness(played[127], f0) > 1.3 * brightness(played[40], f0)
        assert rms(played[127]) > 2 * rms(played[40])
        for p in (57, 60, 63):
            engine.note_on(p, 50)
            engine.note_on(p + 12, 120)
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for _ in range(50):
                engine.process_block(out)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak - before < 4096 and after - before < 1024
    finally:
        engine.worker.stop()


def test_one_layer_engine_keeps_one_slot_list_and_the_curve_gain():
    from synth.engine.engine import Engine

    engine = Engine(SineNoteSource(pitch_range=(60, 62), duration=1.0), block_size=512, midi=False, use_grid=False)
    assert engine.velocity_layers == (100,) and engine.layer_slots == [engine.slots] and len(engine.slots) == 128
    assert engine.worker.progress() == (0, 3)


def test_engine_tracks_held_and_recent_notes_with_their_velocity():
    from synth.engine.engine import Engine
    from synth.engine.midi_io import NOTE_ON

    engine = Engine(SineNoteSource(pitch_range=(48, 72), duration=1.0, velocity_layers=LAYERS), midi=False,
                    use_grid=False)
    engine.note_on(60, 30)
    engine.receive_midi((NOTE_ON, 64, 120))  # a MIDI keyboard note
    held, recent = engine.priority()
    assert held == [(60, 30), (64, 120)] and recent[:2] == [(64, 120), (60, 30)]
    assert engine.held_notes() == [60, 64]


# ------------------------------------------------------------------------------------------- the worker


def layer_of(velocity):
    return nearest_layer(velocity, LAYERS)


def test_worker_generates_held_then_recent_then_the_recent_layer_then_the_others():
    src = RecordingSource(pitch_range=(52, 68), duration=0.5, velocity_layers=LAYERS)
    slots = [BufferSlot() for _ in range(128)]
    held = [(66, 30), (54, 35)]
    recent = [(60, 120), (62, 75)]
    worker = GenerationWorker(src, NoteCache(SR), slots, priority=lambda: (held, recent), batch_size=4)
    assert worker.layers == LAYERS and worker.progress() == (0, 17 * 4)
    worker.start()
    try:
        worker.request(0.0, 0.0)
        assert wait(worker.idle), worker.errors
    finally:
        worker.stop()
    pairs = [(p, layer_of(v)) for v, batch in src.log for p in batch]
    assert len(pairs) == len(set(pairs)) == 17 * 4  # every key of every layer, each once
    assert all(len(batch) <= 4 for _, batch in src.log)
    assert sorted(pairs[:2]) == [(54, 40), (66, 40)]  # held first (one batch: same layer)
    assert pairs[2:4] == [(60, 127), (62, 70)]  # then the recently played, most recent first
    layer_127 = [p for p, layer in pairs[3:] if layer == 127]
    first_other = next(i for i, (p, layer) in enumerate(pairs) if i >= 4 and layer != 127)
    assert len(layer_127) == 16 and first_other == 4 + 16  # the recent layer's whole range comes next...
    ranged = [p for p, _ in pairs[4:first_other]]
    near = [min(abs(p - a) for a in (66, 54, 60, 62)) for p in ranged]
    assert near == sorted(near) and ranged[:5] == [54, 62, 66, 53, 55]  # ...around the held and played keys
    rest = [layer for _, layer in pairs[first_other:]]
    assert rest == sorted(rest, key=lambda layer: (abs(layer - 127), layer))  # then layers nearest it first
    # every slot of every layer is exact and holds its own layer's note
    for index, layer in enumerate(LAYERS):
        for p in range(52, 69):
            slot = worker.layer_slots[index][p]
            assert slot.tag[1] == "exact" and slot.buffer.pitch == p and slot.buffer.key.layer == layer
    assert worker.slots is slots and worker.layer_slots[2] is slots  # the caller's list is the velocity-100 layer
    assert worker.layer_slots[0][20].buffer is worker.layer_slots[0][52].buffer  # edges cover out-of-range keys


def test_plain_pitches_from_an_old_priority_callable_mean_the_default_layer():
    src = RecordingSource(pitch_range=(48, 72), duration=0.5, velocity_layers=LAYERS)
    worker = GenerationWorker(src, NoteCache(SR), [BufferSlot() for _ in range(128)],
                              priority=lambda: ([70, 50], [60]), batch_size=4)
    worker.start()
    try:
        worker.request(0.0, 0.0)
        assert wait(worker.idle), worker.errors
    finally:
        worker.stop()
    assert src.log[0] == (100, [70, 50]) and src.log[1][0] == 100 and src.log[1][1][0] == 60


def test_layers_not_generated_yet_play_a_level_matched_stand_in_until_their_own_note_arrives():
    src = RecordingSource(pitch_range=(58, 62), duration=0.5, velocity_layers=LAYERS, hold=(40,))
    worker = GenerationWorker(src, NoteCache(SR), [BufferSlot() for _ in range(128)],
                              priority=lambda: ([], [(60, 127)]), batch_size=8)
    worker.start()
    try:
        worker.request(0.0, 0.0)
        assert wait(lambda: all(worker.layer_slots[1][p].tag[1:2] == ("exact",) for p in range(58, 63)))
        assert [layer_of(v) for v, _ in src.log] == [127, 100, 70]  # layer 40 is held back
        stand_in = worker.layer_slots[0][60]
        assert stand_in.tag[1] == "stand-in" and stand_in.buffer is not None
        exact_70 = worker.layer_slots[1][60].buffer
        assert stand_in.buffer.data is exact_70.data  # shares the nearest generated layer's audio...
        assert stand_in.buffer.level == pytest.approx(40 / 70)  # ...at the level of its own layer
        assert not worker.idle()
        src.gate.set()
        assert wait(worker.idle)
        assert worker.layer_slots[0][60].tag[1] == "exact" and worker.layer_slots[0][60].buffer.level == 1.0
    finally:
        src.gate.set()
        worker.stop()


def test_a_pad_move_abandons_every_layer_of_the_old_point():
    src = RecordingSource(pitch_range=(48, 72), duration=0.5, velocity_layers=LAYERS)
    src.delay_per_note = 0.01
    worker = GenerationWorker(src, NoteCache(SR), [BufferSlot() for _ in range(128)],
                              priority=lambda: ([], [(60, 40)]), batch_size=4)
    worker.start()
    try:
        worker.request(0.0, 0.0)
        assert wait(lambda: len(src.log) >= 2)
        del src.points[:]
        for k in range(30):  # a fast drag: only the newest point needs to be finished, every layer of it
            worker.request(0.5 + k / 1000, 0.5)
        assert wait(worker.idle)
        assert (0.529, 0.5) in src.points and len(set(src.points)) <= 3
        assert src.points.count((0.529, 0.5)) >= 25 * 4 / 4
        assert all(s.tag[1] == "exact" for layer in worker.layer_slots for s in layer[48:73])
        assert worker.layer_slots[0][60].buffer.key.qx == NoteCache(SR).key("", 0.529, 0.5, 60).qx
    finally:
        worker.stop()


def test_the_model_source_reports_the_synthesizers_velocity_layers():
    from types import SimpleNamespace

    from synth.engine.model_source import ModelNoteSource

    bundle = SimpleNamespace(sample_rate=24000, pitch_range=(21, 108), hash="abc", path="x", instruments=[])
    layered = ModelNoteSource(SimpleNamespace(num_samples=96000, velocity_layers=(40, 70, 100, 127)), bundle)
    old = ModelNoteSource(SimpleNamespace(num_samples=96000), bundle)  # a Synthesizer before velocity layers
    assert velocity_layers_of(layered) == LAYERS and velocity_layers_of(old) == (100,)
    assert layered.pitch_range == (21, 108)
    narrow = ModelNoteSource(SimpleNamespace(num_samples=96000, pitch_range=(24, 96)), bundle)
    assert narrow.pitch_range == (24, 96)  # the synthesizer says which keys it generates
