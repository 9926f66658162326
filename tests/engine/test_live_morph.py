"""Live morphing with nothing prepared (issue 19): the model's preview notes and the worker's preview thread.

Models are tiny seeded bundles on CPU (generator and flow play paths); the worker runs its real threads on the
demo source with a simulated model cost, so previews must arrive long before the exact notes can.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from synth.engine.buffers import BufferSlot
from synth.engine.note_cache import NoteCache
from synth.engine.sources import SineNoteSource
from synth.engine.worker import GenerationWorker
from tests.engine.helpers import open_tiny_bundle, wait
from tests.engine.slow_source import SlowSineNoteSource

SR = 48000


@pytest.fixture(params=[False, True], ids=["generator", "flow"])
def model_source(request, tmp_path_factory, one_torch_thread):
    source = open_tiny_bundle(tmp_path_factory, request.param)
    assert source.play_path == ("flow" if request.param else "generator")
    return source


def test_generate_through_frames_is_the_synthesizers_own_audio(model_source):
    synth = model_source.synthesizer
    audio = model_source.generate((0.2, -0.1), [48, 60], 100)
    assert audio.shape == (2, synth.num_samples) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, synth.generate((0.2, -0.1), [48, 60], 100), atol=1e-5)
    assert model_source.anchor_count() == 2  # the exact notes are remembered as preview anchors


def test_preview_at_an_anchor_is_the_exact_note_and_moves_with_the_point(model_source):
    synth = model_source.synthesizer
    pitches = [50, 62]
    exact = model_source.generate((0.1, 0.1), pitches, 100)
    at_anchor = model_source.preview((0.1, 0.1), pitches, 100)
    n = at_anchor.shape[1]
    assert 0 < n <= exact.shape[1] and np.isfinite(at_anchor).all()
    held = int(model_source.held_seconds * model_source.sample_rate)
    edge = min(n, held)
    # decoded at least through the sustain loop: a held voice loops on the preview as on the exact note
    cache = NoteCache(SR, held_seconds=model_source.held_seconds)
    loop = cache.prepare(at_anchor[0], model_source.sample_rate, 50)
    full = cache.prepare(exact[0], model_source.sample_rate, 50)
    assert loop.loop_end > 0 and (loop.loop_start, loop.loop_end) == (full.loop_start, full.loop_end)
    # same frames decoded (a shorter decode may differ only near its end: compare the first half of the held part)
    np.testing.assert_allclose(at_anchor[:, : edge // 2], exact[:, : edge // 2], atol=2e-3)
    # elsewhere: the anchor's frames moved by the VAE's change between the two points
    moved = model_source.preview((0.6, -0.4), pitches, 100)
    with torch.inference_mode():
        frames = synth.frames((0.1, 0.1), pitches) + (synth.vae_frames((0.6, -0.4), pitches)
                                                       - synth.vae_frames((0.1, 0.1), pitches))
    expected = synth.decode_frames(frames)
    np.testing.assert_allclose(moved[:, : edge // 2], expected[:, : edge // 2], atol=2e-3)
    with torch.inference_mode():  # not vacuous: the VAE's frames do differ between the two points
        assert (synth.vae_frames((0.6, -0.4), pitches) - synth.vae_frames((0.1, 0.1), pitches)).abs().max() > 1e-3


def test_preview_without_anchors_plays_the_vae_frames(model_source):
    synth = model_source.synthesizer
    out = model_source.preview((-0.3, 0.4), [55], 100)
    ref = synth.decode_frames(synth.vae_frames((-0.3, 0.4), [55]))
    m = out.shape[1] // 2
    np.testing.assert_allclose(out[:, :m], ref[:, :m], atol=2e-3)
    assert model_source.anchor_count() == 0


def _worker(source, held, **kw):
    cache = NoteCache(SR, held_seconds=source.held_seconds)
    slots = [BufferSlot() for _ in range(128)]
    worker = GenerationWorker(source, cache, slots, priority=lambda: (held, held), batch_size=4, **kw)
    return worker, slots


def test_held_notes_get_previews_long_before_the_exact_notes_and_exact_wins():
    # a slow "model": 0.4 s per note, so 4 held notes take 1.6 s to generate exactly
    src = SlowSineNoteSource(pitch_range=(55, 70), duration=1.0, delay_per_note=0.4)
    held = [57, 60, 64, 67]
    worker, slots = _worker(src, held, preview=True, settle=0.1)
    worker.start()
    try:
        worker.request(-0.8, 0.0)
        assert wait(lambda: all(slots[p].tag[1:] == ("preview",) for p in held), 5)
        first = {p: slots[p].buffer for p in held}
        assert worker.exact_latency is None  # the exact notes are still being generated
        worker.request(0.8, 0.0)  # the pad moved on: new previews for the new point
        assert wait(lambda: all(slots[p].buffer is not first[p] and slots[p].tag[0] == worker.serial for p in held),
                    5)
        assert all(slots[p].tag[1] in ("preview", "exact") for p in held)
        # the preview is the source's own note at the new point (brighter to the right)
        np.testing.assert_allclose(slots[60].buffer.data[: SR // 2],
                                   worker.cache.prepare(src.preview((0.8, 0.0), [60])[0], src.sample_rate,
                                                        60).data[: SR // 2], atol=1e-6)
        assert wait(lambda: worker.exact_latency is not None, 20)
        assert all(slots[p].tag[1:] == ("exact",) for p in held)  # the exact notes replaced the previews
        assert worker.preview_notes >= 8 and len(worker.preview_log) >= 2
    finally:
        src.done.set()  # the batch in progress (the other keys) ends now: stop() need not wait it out
        worker.stop()


def test_without_preview_nothing_changes_and_a_failing_preview_is_reported():
    class Broken(SineNoteSource):
        def preview(self, xy, pitches, velocity=100):
            raise RuntimeError("preview broke")

        def generate(self, xy, pitches, velocity=100):
            time.sleep(0.5)  # the exact notes take a while, as a model's do: the preview thread has held notes to do
            return super().generate(xy, pitches, velocity)

    src = Broken(pitch_range=(58, 62), duration=1.0)
    worker, slots = _worker(src, [60], preview=True, settle=0.0)
    worker.start()
    try:
        worker.request(0.0, 0.0)
        assert wait(lambda: worker.idle(), 20)  # exact notes still come
        assert slots[60].tag[1:] == ("exact",)
        assert wait(lambda: any("preview broke" in e for e in worker.errors), 5)
    finally:
        worker.stop()
    plain, _ = _worker(SineNoteSource(pitch_range=(58, 62), duration=1.0), [60])
    assert plain.settle == 0.0 and not plain.previews_enabled


def test_a_preview_never_replaces_a_newer_points_buffer():
    src = SineNoteSource(pitch_range=(58, 62), duration=1.0)
    worker, slots = _worker(src, [60], preview=False)
    worker.request(0.0, 0.0)
    worker.request(0.5, 0.0)
    newer = worker.serial
    buf = worker.cache.prepare(src.preview((0.5, 0), [60])[0], src.sample_rate, 60)
    assert worker.swap_in(60, worker.default_layer, buf, newer, "exact")
    old = worker.cache.prepare(src.preview((0.0, 0), [60])[0], src.sample_rate, 60)
    assert not worker.swap_in_preview(60, worker.default_layer, old, newer - 1)  # older point: refused
    assert not worker.swap_in_preview(60, worker.default_layer, old, newer)  # same point, exact is better
    assert slots[60].buffer is buf
    worker.request(0.9, 0.0)
    assert worker.swap_in_preview(60, worker.default_layer, old, newer + 1)  # an older point's exact gives way
    assert slots[60].tag == (newer + 1, "preview") and slots[60].buffer is old


def test_preview_tail_is_the_preview_from_a_frame_at_or_before_its_start(model_source):
    """``preview_tail``: the same samples as ``preview`` from a whole codec frame on (issue 19: held voices play
    from the sustain loop on, so the frames before it are not synthesized)."""
    synth = model_source.synthesizer
    pitches = [50, 62]
    model_source.generate((0.1, 0.1), pitches, 100)  # an anchor
    hop = synth.num_samples // synth.num_frames
    whole = model_source.preview((0.5, -0.3), pitches, 100)
    for start_s in (0.02, 0.05):
        offset, tail = model_source.preview_tail((0.5, -0.3), pitches, 100, start_s)
        assert 0 < offset <= start_s * model_source.sample_rate and offset % hop == 0
        assert tail.shape == (2, whole.shape[1] - offset) and tail.dtype == np.float32
        np.testing.assert_allclose(tail, whole[:, offset:], atol=1e-6)
    assert model_source.preview_tail((0.5, -0.3), pitches, 100, 0.0)[0] == 0  # from the start: the whole preview


def test_a_spliced_preview_is_the_whole_preview_after_the_seam_and_keeps_the_old_start():
    from synth.engine.buffers import (SPLICE_MARGIN_S, SPLICE_SEAM_S, loop_region, prepare_note_buffer,
                                      splice_note_buffer, stand_in)

    src = SineNoteSource(pitch_range=(48, 72), duration=4.0)
    rate, held = src.sample_rate, src.held_seconds
    old = prepare_note_buffer(src.generate((-0.8, 0.0), [60])[0], rate, SR, 60, held_seconds=held)
    new = src.generate((0.8, 0.5), [60])[0] * 0.7
    whole = prepare_note_buffer(new, rate, SR, 60, held_seconds=held)
    offset = int(0.7 * rate)
    spliced = splice_note_buffer(new[offset:], offset, rate, SR, 60, old, held_seconds=held)
    seam = int(round((0.7 + SPLICE_MARGIN_S) * SR))
    after = seam + int(round(SPLICE_SEAM_S * SR))
    assert (spliced.length, spliced.loop_start, spliced.loop_end) == (whole.length, whole.loop_start, whole.loop_end)
    assert spliced.loop_gain == pytest.approx(whole.loop_gain, abs=1e-6)
    np.testing.assert_allclose(spliced.data[after:], whole.data[after:], atol=1e-5)  # loop and tail included
    np.testing.assert_array_equal(spliced.data[:seam], old.data[:seam])
    assert np.abs(spliced.data[after:] - old.data[after:]).max() > 0.01  # not vacuous: the notes differ
    # no start to keep, a stand-in (another level), or a splice inside the loop's crossfade: the caller makes it all
    assert splice_note_buffer(new[offset:], offset, rate, SR, 60, None, held_seconds=held) is None
    assert splice_note_buffer(new[offset:], offset, rate, SR, 60, stand_in(old, 0.5), held_seconds=held) is None
    loop_start, _, crossfade = loop_region(held)
    late = int((loop_start - crossfade) * rate)
    assert splice_note_buffer(new[late:], late, rate, SR, 60, old, held_seconds=held) is None


class TailSource(SlowSineNoteSource):
    """The demo source with ``preview_tail`` (as the model sources have it), counting its calls."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tails = 0
        self.previews = 0

    def preview(self, xy, pitches, velocity=100):
        self.previews += 1
        return super().preview(xy, pitches, velocity)

    def preview_tail(self, xy, pitches, velocity=100, start_s=0.0):
        self.tails += 1
        offset = int(start_s * self.sample_rate)
        return offset, super().preview(xy, pitches, velocity)[:, offset:]


def test_the_worker_splices_previews_onto_what_the_held_slots_play():
    from synth.engine.buffers import SPLICE_MARGIN_S, SPLICE_SEAM_S

    src = TailSource(pitch_range=(55, 70), duration=4.0, delay_per_note=0.3)
    held = [57, 60, 64]
    worker, slots = _worker(src, held, preview=True, settle=0.1)
    assert 0.7 < worker.preview_start_s < 0.85  # NSynth's held 3 s: just before the loop's crossfade at 0.85 s
    worker.start()
    try:
        worker.request(-0.8, 0.0)  # empty slots: whole previews first
        assert wait(lambda: all(slots[p].tag[1:] == ("preview",) for p in held), 5)
        assert src.previews >= 1
        assert wait(lambda: worker.exact_latency is not None, 20)
        before = {p: slots[p].buffer for p in held}
        worker.request(0.8, 0.0)
        assert wait(lambda: all(slots[p].tag[1:] == ("preview",) and slots[p].tag[0] == worker.serial
                                for p in held), 5)
        assert src.tails >= 1
        buf = slots[60].buffer
        seam = int(round((worker.preview_start_s + SPLICE_MARGIN_S) * SR))
        after = seam + int(round(SPLICE_SEAM_S * SR))
        whole = worker.cache.prepare(src.preview((0.8, 0.0), [60])[0], src.sample_rate, 60)
        np.testing.assert_allclose(buf.data[after:], whole.data[after:], atol=1e-5)
        np.testing.assert_array_equal(buf.data[:seam], before[60].data[:seam])  # the exact note's start
        assert wait(lambda: all(slots[p].tag[1:] == ("exact",) for p in held), 20)
    finally:
        src.done.set()  # the batch in progress (the other keys) ends now: stop() need not wait it out
        worker.stop()


def test_a_slot_whose_buffer_cannot_give_the_start_gets_the_whole_preview():
    from synth.engine.buffers import prepare_note_buffer

    src = TailSource(pitch_range=(55, 70), duration=4.0)
    worker, slots = _worker(src, [60, 64], preview=True, settle=10.0)
    short = prepare_note_buffer(np.zeros(int(0.5 * src.sample_rate), np.float32), src.sample_rate, SR, 60)
    full = prepare_note_buffer(src.generate((0.0, 0.0), [64])[0], src.sample_rate, SR, 64,
                               held_seconds=src.held_seconds)
    slots[60].buffer, slots[64].buffer = short, full  # 60 plays a note too short to keep its start
    worker.request(0.5, 0.0)
    layer = worker.default_layer
    assert worker._preview_round(0.5, 0.0, worker.serial, layer, [60, 64], 100) == 2
    assert src.tails == 1 and src.previews == 1  # 64 spliced, 60 made whole
    whole = worker.cache.prepare(src.preview((0.5, 0.0), [60])[0], src.sample_rate, 60)
    np.testing.assert_allclose(slots[60].buffer.data, whole.data, atol=1e-6)
    np.testing.assert_array_equal(slots[64].buffer.data[: SR // 2], full.data[: SR // 2])
