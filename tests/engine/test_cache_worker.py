"""Note cache, on-disk grid (prerender), the generation worker and the engine's callback without audio I/O."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from synth.engine.buffers import BufferSlot
from synth.engine.note_cache import GridSpec, GridStore, NoteCache
from synth.engine.prerender_cli import prerender
from synth.engine.sources import SineNoteSource
from synth.engine.worker import GenerationWorker
from tests.engine.helpers import wait

SR = 48000


class RecordingSource(SineNoteSource):
    """SineNoteSource that remembers every generate() call (to check order and coalescing)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.log: list[tuple[tuple[float, float], list[int]]] = []

    def generate(self, xy, pitches, velocity=100):
        self.log.append(((float(xy[0]), float(xy[1])), list(pitches)))
        return super().generate(xy, pitches, velocity)


def test_cache_keys_resampling_and_lru():
    src = SineNoteSource(duration=1.0)
    cache = NoteCache(SR, step=0.1, max_bytes=3 * 4 * (SR + 8))
    k1 = cache.key("b", 0.31, -0.02, 60)
    assert k1 == cache.key("b", 0.29, 0.04, 60, velocity=90)  # same cell, same velocity layer
    assert k1 != cache.key("b", 0.45, 0.0, 60)
    buf = cache.insert(k1, src.generate((0.3, 0), [60])[0], src.sample_rate)
    assert buf.sample_rate == SR and buf.length == SR  # 24 kHz -> 48 kHz on insert
    for p in (61, 62, 63):
        cache.insert(cache.key("b", 0, 0, p), src.generate((0, 0), [p])[0], src.sample_rate)
    assert cache.get(k1) is None and len(cache) == 3  # oldest evicted past max_bytes


def test_prerender_grid_is_resumable_and_nearest_point(tmp_path):
    src = SineNoteSource(pitch_range=(60, 63), duration=1.0)
    store = GridStore(src.hash, tmp_path)
    summary = prerender(src, store, 3, progress=False)
    assert summary["rendered"] == 9 and store.progress() == (9, 9)
    data = store.load(1, 1)
    assert data.dtype == np.float16 and data.shape == (4, 24000)
    store.path(2, 2).unlink()
    again = prerender(src, GridStore(src.hash, tmp_path), 3, progress=False)
    assert again["rendered"] == 1 and again["skipped"] == 8
    spec = GridStore(src.hash, tmp_path).spec
    assert spec.nearest(0.9, -0.8) == (2, 0) and spec.point(2, 0) == (1.0, -1.0)
    assert GridSpec.from_json(spec.to_json()) == spec


def test_worker_serves_held_notes_first_and_coalesces_pad_moves():
    src = RecordingSource(pitch_range=(48, 72), duration=1.0, delay_per_note=0.01)
    slots = [BufferSlot() for _ in range(128)]
    held = [70, 50]
    worker = GenerationWorker(src, NoteCache(SR), slots, priority=lambda: (held, [60]), batch_size=4)
    worker.start()
    try:
        worker.request(0.0, 0.0)
        assert wait(worker.idle)
        assert sorted(src.log[0][1]) == [50, 70]  # the held notes are the first batch
        assert src.log[1][1][0] == 60  # then the recently played one
        assert worker.exact_latency is not None and worker.complete_latency >= worker.exact_latency
        # out-of-range pitches share the nearest generated pitch's buffer
        assert slots[20].buffer is slots[48].buffer and slots[120].buffer is slots[72].buffer
        assert slots[60].buffer.pitch == 60
        src.log.clear()
        for k in range(50):  # a fast drag: only the newest point needs to be finished
            worker.request(0.5 + k / 1000, 0.5)
        assert wait(worker.idle)
        points = {xy for xy, _ in src.log}
        assert (0.549, 0.5) in points and len(points) <= 3
        assert all(s.tag[1] == "exact" for s in slots[48:73])
    finally:
        worker.stop()


def test_grid_answers_a_pad_move_before_the_exact_point(tmp_path):
    grid_src = SineNoteSource(pitch_range=(48, 60), duration=1.0)
    store = GridStore(grid_src.hash, tmp_path)
    prerender(grid_src, store, 3, progress=False)
    slow = SineNoteSource(pitch_range=(48, 60), duration=1.0, delay_per_note=0.2)
    slots = [BufferSlot() for _ in range(128)]
    worker = GenerationWorker(slow, NoteCache(SR), slots, grid=store, priority=lambda: ([55], []))
    worker.bundle = grid_src.hash  # same model as the grid
    worker.start()
    try:
        worker.request(0.9, 0.1)
        assert wait(lambda: worker.grid_latency is not None, 5)
        assert slots[55].tag[1] == "grid" and worker.grid_latency < 0.15
        assert wait(lambda: worker.exact_latency is not None, 10)
        assert slots[55].tag[1] == "exact" and worker.exact_latency > worker.grid_latency
    finally:
        worker.stop()


def test_engine_block_processing_is_allocation_free_and_plays():
    from synth.engine.engine import Engine

    engine = Engine(SineNoteSource(pitch_range=(48, 72), duration=2.0), block_size=1024, midi=False,
                    use_grid=False)
    engine.worker.start()
    try:
        engine.worker.request(0.0, 0.0)
        assert wait(engine.worker.idle)
        out = np.zeros((1024, 2), np.float32)
        for p in range(48, 72):
            engine.note_on(p, 100)
        engine.sustain(True)
        engine.pitch_bend(0.5)
        for _ in range(5):
            engine.process_block(out)
        assert 0.05 < np.max(np.abs(out)) <= 10 ** (-0.3 / 20)
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            for _ in range(100):
                engine.process_block(out)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak - before < 4096 and after - before < 1024
        engine.panic()
        for _ in range(3):
            engine.process_block(out)
        assert np.max(np.abs(out)) == 0 and engine.mixer.active_voices == 0
    finally:
        engine.worker.stop()


def test_engine_from_tiny_bundle_plays_the_model(tmp_path):
    pytest.importorskip("torch")
    from synth.engine.engine import Engine
    from synth.model.bundle import build_tiny_bundle

    path = build_tiny_bundle(tmp_path / "tiny")
    engine = Engine.from_bundle(path, block_size=512, midi=False, use_grid=False)
    assert engine.source.hash and engine.source.map_bounds is not None
    engine.worker.start()
    try:
        engine.worker.request(0.1, 0.2)
        assert wait(engine.worker.idle, 60), engine.worker.errors
        lo, hi = engine.source.pitch_range
        buf = engine.slots[lo].buffer
        assert buf.sample_rate == 48000 and np.all(np.isfinite(buf.data))
        out = np.zeros((512, 2), np.float32)
        engine.note_on(lo, 100)
        for _ in range(4):
            engine.process_block(out)
        assert np.all(np.isfinite(out))
    finally:
        engine.worker.stop()
