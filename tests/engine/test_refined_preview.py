"""Refined live-morph previews (issue 19): a few flow steps at the newest pad point, spread over the preview rounds.

The flow sampler's notes in 2 steps (same point-seeded noise and guidance as the exact notes) become the source's
refined anchor; the cheap previews are moved from it instead of from the far exact notes, and one made at the point
the finger rests on is swapped in itself ("refined", above a preview of that point, below the exact note). Tiny
seeded bundles on CPU; the worker's scheduling runs on the demo source with a scripted refinement.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from synth.engine.buffers import BufferSlot
from synth.engine.model_source import REFINE_CHUNK, REFINE_GUIDED_STEPS, REFINE_STEPS
from synth.engine.note_cache import NoteCache
from synth.engine.sources import SineNoteSource
from synth.engine.worker import GenerationWorker
from tests.engine.helpers import open_tiny_bundle, wait

SR = 48000


@pytest.fixture
def flow_source(tmp_path_factory, one_torch_thread):
    source = open_tiny_bundle(tmp_path_factory, True)
    assert source.play_path == "flow"
    return source


def _calls(pitches) -> int:
    return REFINE_STEPS * -(-len(pitches) // REFINE_CHUNK)


def _refine(source, xy, pitches, tag, fresh=False):
    """Run one refinement to its end; the calls' answers."""
    out = [source.refine_preview(xy, pitches, 100, tag, fresh)]
    while not out[-1][1]:
        out.append(source.refine_preview(xy, pitches, 100, tag))
    return out


def _perturbed(source):
    """The tiny flow model's weights moved off their zero-initialised output layers (it then predicts velocity 0
    everywhere: every step would be the noise), seeded."""
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in source.synthesizer.flow.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return source


def test_the_flow_steps_one_at_a_time_are_the_flow_samplers_own(flow_source):
    synth = _perturbed(flow_source).synthesizer
    pitches = [50, 57, 62]
    steps = list(synth.flow_frame_steps((0.2, -0.1), pitches, 100, 2))
    assert len(steps) == 2 and not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    with torch.inference_mode():
        z, p = synth.model_inputs((0.2, -0.1), pitches)
        v = torch.full((3,), 100, dtype=torch.long)
        whole = synth.lock_pitch(synth.flow.generate(z, p, v, steps=2, guidance=synth.guidance), p)
    torch.testing.assert_close(steps[-1], whole, atol=1e-5, rtol=0)
    assert (steps[1] - steps[0]).abs().max() > 1e-3
    # guidance in the first step only: the second step is the plain conditional model's
    one = list(synth.flow_frame_steps((0.2, -0.1), pitches, 100, 2, guided_steps=1))
    torch.testing.assert_close(one[0], steps[0], atol=1e-6, rtol=0)
    with torch.inference_mode():
        x = synth.flow.generate_steps(z, p, v, steps=2, guidance=[synth.guidance, 1.0])
        torch.testing.assert_close(one[1], synth.lock_pitch(list(x)[-1], p), atol=1e-6, rtol=0)
    assert synth.guidance != 1.0 and (one[1] - steps[1]).abs().max() > 1e-4


def test_a_refinement_takes_its_calls_then_becomes_the_anchor_previews_move_from(flow_source):
    synth = _perturbed(flow_source).synthesizer
    pitches = [50, 57, 62]
    flow_source.generate((-0.6, -0.6), pitches, 100)  # an exact anchor far away
    out = _refine(flow_source, (0.3, 0.2), pitches, tag=7)
    assert out == [(7, False)] * (_calls(pitches) - 1) + [(7, True)]
    assert flow_source.backend.refined_points() == {(p, 100): (0.3, 0.2) for p in pitches}
    assert flow_source.anchor_count() == 3  # refinements are not exact anchors
    frames = list(synth.flow_frame_steps((0.3, 0.2), pitches, 100, REFINE_STEPS, REFINE_GUIDED_STEPS))[-1]
    keep = flow_source.backend._preview_frames((0.3, 0.2), pitches, 100)[1]
    at_point = flow_source.preview((0.3, 0.2), pitches, 100)
    m = at_point.shape[1] // 2
    np.testing.assert_allclose(at_point[:, :m], synth.decode_frames(frames[:, :keep])[:, :m], atol=2e-3)
    # nearby: moved from the refinement by the VAE's change, not from the exact note far away
    near = flow_source.preview((0.35, 0.2), pitches, 100)
    moved = frames + (synth.vae_frames((0.35, 0.2), pitches) - synth.vae_frames((0.3, 0.2), pitches))
    np.testing.assert_allclose(near[:, :m], synth.decode_frames(moved[:, :keep])[:, :m], atol=2e-3)
    # at the exact note the exact note wins (a refinement nearer elsewhere does not)
    exact = flow_source.generate((-0.6, -0.6), pitches, 100)
    np.testing.assert_allclose(flow_source.preview((-0.6, -0.6), pitches, 100)[:, :m], exact[:, :m], atol=2e-3)


def test_a_refinement_under_way_is_continued_and_never_goes_back_to_an_older_point(flow_source):
    pitches = [50, 57, 62, 66]
    assert flow_source.refine_preview((0.1, 0.1), pitches, 100, 1) == (1, False)
    # the finger moved on: the calls continue the refinement started at (0.1, 0.1), whatever point they are for
    out = [flow_source.refine_preview((0.5, 0.5), pitches, 100, tag) for tag in range(2, 1 + _calls(pitches))]
    assert out[-1] == (1, True) and all(o == (1, False) for o in out[:-1])
    assert set(flow_source.backend.refined_points().values()) == {(0.1, 0.1)}
    _refine(flow_source, (0.5, 0.5), pitches, tag=9)  # the next one starts at the newest point and replaces it
    assert set(flow_source.backend.refined_points().values()) == {(0.5, 0.5)}
    # fresh: one left unfinished (the drag ended) is dropped, not finished later at its old point
    assert flow_source.refine_preview((-0.4, 0.0), pitches, 100, 10) == (10, False)
    assert _refine(flow_source, (0.6, 0.6), pitches, tag=11, fresh=True)[-1] == (11, True)
    assert set(flow_source.backend.refined_points().values()) == {(0.6, 0.6)}
    # other notes (a key went down) start afresh too
    assert flow_source.refine_preview((0.7, 0.7), pitches[:2], 100, 12) == (12, False)
    assert _refine(flow_source, (0.2, 0.7), pitches[:2], tag=13)[-1] == (12, True)


def test_only_the_flow_sampler_refines(tmp_path_factory, one_torch_thread):
    source = open_tiny_bundle(tmp_path_factory, False)
    assert source.refine_preview((0.1, 0.1), [60], 100, 1) is None
    assert SineNoteSource().preview is not None and not hasattr(SineNoteSource(), "refine_preview")


# ------------------------------------------------------------------------------------------- the worker's schedule
class RefiningSource(SineNoteSource):
    """The demo source with a scripted refinement: ``calls`` calls each, the refined point kept; a preview at the
    refined point is marked (its notes are those of the point one map unit to the right: brighter), so a test can
    tell a refined preview from a cheap one."""

    def __init__(self, calls: int = 3, step_s: float = 0.0, **kw):
        super().__init__(**kw)
        self.need = calls
        self.step_s = step_s
        self.job = None
        self.refined_at: list[tuple[float, float, int]] = []  # (x, y, tag) of each finished refinement
        self.log: list[tuple[tuple[float, float], int, bool]] = []  # (xy, tag, fresh) of each call
        self.lock = threading.Lock()

    def mark(self, xy):
        return (float(xy[0]) + 1.0, float(xy[1]))

    def preview(self, xy, pitches, velocity=100):
        with self.lock:
            refined = bool(self.refined_at) and self.refined_at[-1][:2] == (float(xy[0]), float(xy[1]))
        return super().preview(self.mark(xy) if refined else xy, pitches, velocity)

    def refine_preview(self, xy, pitches, velocity=100, tag=None, fresh=False):
        self.log.append(((float(xy[0]), float(xy[1])), tag, fresh))
        if self.step_s:
            time.sleep(self.step_s)
        if fresh or self.job is None:
            self.job = [float(xy[0]), float(xy[1]), tag, 0]
        self.job[3] += 1
        if self.job[3] < self.need:
            return self.job[2], False
        x, y, tag, _ = self.job
        self.job = None
        with self.lock:
            self.refined_at.append((x, y, tag))
        return tag, True


def _worker(source, held, **kw):
    cache = NoteCache(SR, held_seconds=source.held_seconds)
    slots = [BufferSlot() for _ in range(128)]
    worker = GenerationWorker(source, cache, slots, priority=lambda: (held, held), batch_size=4, **kw)
    return worker, slots


def test_refined_previews_are_made_during_a_drag_and_swapped_in_where_the_finger_rests():
    src = RefiningSource(calls=3, step_s=0.005, pitch_range=(55, 70), duration=1.0, delay_per_note=0.5)
    held = [57, 60, 64]
    worker, slots = _worker(src, held, preview=True, settle=30.0)  # no exact notes during the test
    worker.start()
    try:
        for i in range(40):  # a drag: a new point every 10 ms
            worker.request(-0.8 + 0.04 * i, 0.0)
            time.sleep(0.01)
        serial = worker.serial
        assert wait(lambda: all(slots[p].tag == (serial, "refined") for p in held), 5)
        x = -0.8 + 0.04 * 39
        assert src.refined_at[-1][2] == serial and src.refined_at[-1][:2] == pytest.approx((x, 0.0))
        # the refined buffer is the source's preview at the resting point, made once the refinement was there
        refined = worker.cache.prepare(src.preview((x, 0.0), [60])[0], src.sample_rate, 60)
        np.testing.assert_allclose(slots[60].buffer.data, refined.data, atol=1e-6)
        cheap = SineNoteSource(pitch_range=(55, 70), duration=1.0).preview((x, 0.0), [60])[0]
        assert np.abs(refined.data - worker.cache.prepare(cheap, src.sample_rate, 60).data).max() > 1e-3
        tags = [tag for _, tag in worker.refine_log]
        assert len(tags) >= 2 and tags == sorted(tags)  # made during the drag, each for a newer point
        assert worker.refined_notes >= len(held) and worker.refine_steps >= 3 * len(tags)
        # resting: nothing more to refine, no more rounds
        steps, rounds = worker.refine_steps, len(worker.preview_log)
        time.sleep(0.2)
        assert (worker.refine_steps, len(worker.preview_log)) == (steps, rounds)
    finally:
        worker.stop()


def test_a_refinement_finished_for_an_older_point_never_replaces_a_newer_points_preview():
    src = RefiningSource(calls=2, pitch_range=(55, 70), duration=1.0)
    worker, slots = _worker(src, [60], preview=True, settle=30.0)
    layer = worker.default_layer
    worker.request(0.0, 0.0)
    older = worker.serial
    worker.request(0.5, 0.0)
    newer = worker.serial
    buf = lambda x: worker.cache.prepare(src.preview((x, 0.0), [60])[0], src.sample_rate, 60)  # noqa: E731
    assert worker.swap_in_preview(60, layer, buf(0.5), newer)
    assert not worker.swap_in_preview(60, layer, buf(0.0), older, "refined")  # older point: refused
    assert slots[60].tag == (newer, "preview")
    refined = buf(0.5)
    assert worker.swap_in_preview(60, layer, refined, newer, "refined")  # same point: refined beats preview
    assert not worker.swap_in_preview(60, layer, buf(0.5), newer)  # ... and a preview does not undo it
    assert slots[60].tag == (newer, "refined") and slots[60].buffer is refined
    exact = buf(0.5)
    assert worker.swap_in(60, layer, exact, newer, "exact")
    assert not worker.swap_in_preview(60, layer, refined, newer, "refined")  # the exact note stays
    assert slots[60].buffer is exact


def test_the_worker_starts_afresh_after_a_rest_and_never_finishes_an_older_drags_refinement():
    # a refinement takes 4 calls of 20 ms, the exact note 50 ms: the first one is left unfinished
    src = RefiningSource(calls=4, step_s=0.02, pitch_range=(55, 70), duration=1.0, delay_per_note=0.05)
    worker, slots = _worker(src, [60], preview=True, settle=0.0)
    worker.start()
    try:
        worker.request(0.1, 0.0)
        assert wait(lambda: worker.idle(), 10)
        time.sleep(0.1)  # the preview thread has left its rounds
        calls, finished = len(src.log), len(src.refined_at)
        worker.request(0.6, 0.0)
        second = worker.serial
        assert wait(lambda: slots[60].tag == (second, "exact"), 10)
        time.sleep(0.1)
        new = src.log[calls:]
        assert new and new[0][2]  # the first call after a rest starts afresh (fresh=True)
        assert all(tag == second for _, _, tag in src.refined_at[finished:])  # nothing of the first point
        tags = [tag for _, tag in worker.refine_log]
        assert tags == sorted(tags)
    finally:
        worker.stop()


def test_a_source_without_refinement_gets_previews_as_before():
    src = SineNoteSource(pitch_range=(55, 70), duration=1.0, delay_per_note=0.3)
    worker, slots = _worker(src, [60], preview=True, settle=0.1)
    assert worker._refine_fn is None
    worker.start()
    try:
        worker.request(0.3, 0.0)
        assert wait(lambda: slots[60].tag == (worker.serial, "preview"), 5)
        assert wait(lambda: slots[60].tag == (worker.serial, "exact"), 10)
        assert worker.refine_steps == 0 and not worker.refine_log
    finally:
        worker.stop()


def test_the_worker_refines_a_tiny_flow_bundle_where_the_finger_rests(flow_source):
    pitches = [50, 57]
    worker, slots = _worker(flow_source, pitches, preview=True, settle=30.0)
    worker.start()
    try:
        for i in range(6):
            worker.request(-0.5 + 0.15 * i, 0.1)
            time.sleep(0.02)
        serial = worker.serial
        assert wait(lambda: all(slots[p].tag == (serial, "refined") for p in pitches), 20)
        assert flow_source.backend.refined_points()[(50, 100)] == pytest.approx((0.25, 0.1))
        assert worker.exact_latency is None and not worker.errors
    finally:
        worker.stop()


class SlowPreviews(RefiningSource):
    def preview(self, xy, pitches, velocity=100):
        time.sleep(0.015)  # a round takes 15 ms; the pad moves every 5 ms, so a newer point always waits
        return super().preview(xy, pitches, velocity)


@pytest.mark.parametrize("budget", [0.0, 1.0])
def test_during_a_drag_a_piece_runs_only_within_the_budget_and_at_rest_always(budget):
    src = SlowPreviews(calls=6, step_s=0.002, pitch_range=(55, 70), duration=1.0)
    worker, slots = _worker(src, [60], preview=True, settle=30.0)
    worker.refine_budget_s = budget
    worker.start()
    try:
        for i in range(40):
            worker.request(-0.5 + 0.02 * i, 0.0)
            time.sleep(0.005)
        during = len(worker.refine_log)
        serial = worker.serial
        assert wait(lambda: slots[60].tag == (serial, "refined"), 5)  # resting: the refinement finishes anyway
        if budget == 0.0:  # no time between updates: no piece after a round, so none finished while dragging
            assert during == 0 and worker.refine_skips >= 5
        else:
            assert during >= 1 and worker.refine_skips == 0
    finally:
        worker.stop()
