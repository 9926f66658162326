"""Continuation seams (synth.eval.seam): known answers on synthetic notes, then the real sampler of a tiny bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth.engine.synthesizer import Synthesizer
from synth.eval import seam
from synth.model.bundle import build_tiny_bundle, load_bundle

SR = 24_000


def partials(seconds: float, f0: float, amp: np.ndarray | float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * f0 * k * t + phase * k) / k for k in range(1, 9))
    return (amp * 0.1 * wave).astype(np.float32)


def test_an_uncut_note_has_no_seam_and_its_join_ranks_like_the_note_itself():
    note = partials(4.0, 220.0, 1.0)
    r = seam.note_seam(note, note, join_sample=2 * SR, release_sample=3 * SR, sample_rate=SR)
    assert r["flux_join_db"] == pytest.approx(r["flux_control_db"])
    assert r["level_step_db"] == pytest.approx(r["level_step_control_db"]) and r["level_step_db"] < 0.1
    assert 0.0 <= r["flux_rank"] <= 1.0


def test_a_level_and_phase_jump_at_the_join_is_found():
    note = partials(4.0, 220.0, 1.0)
    t = np.arange(len(note)) / SR
    cut = np.where(t < 2.0, note, partials(4.0, 220.0, 0.5, phase=1.3)).astype(np.float32)
    r = seam.note_seam(cut, note, join_sample=2 * SR, release_sample=3 * SR, sample_rate=SR)
    assert r["level_step_db"] == pytest.approx(6.0, abs=0.5)
    assert r["flux_join_db"] > 3 * max(r["flux_control_db"], 1e-3)
    assert r["flux_rank"] == 1.0 and r["level_step_rank"] == 1.0
    summary = seam.summarize([r, seam.note_seam(note, note, 2 * SR, 3 * SR, SR)])
    assert summary["notes"] == 2 and summary["share_join_flux_above_control"] == 0.5


@pytest.fixture(scope="module")
def tiny_flow_synth(tmp_path_factory):
    return Synthesizer(load_bundle(build_tiny_bundle(tmp_path_factory.mktemp("seam") / "b", flow=True)), device="cpu")


def test_the_tiny_sampler_continues_notes_and_the_report_is_complete(tiny_flow_synth):
    s = tiny_flow_synth
    cfg = s.flow.cfg
    length = s.num_samples / s.sample_rate
    fps = cfg.num_frames / length
    join_s = 12 / fps  # 12 frames: after the 8 context frames, before the note-off at 3/4 of the window
    z = torch.tensor([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]])
    p = torch.tensor([60, 62, 64])
    v = torch.full((3,), 100)
    first, joined = seam.long_frames(s, z, p, v, join=12, context=cfg.context_frames)
    assert joined.shape == (3, 12 + cfg.num_frames - cfg.context_frames, cfg.dim)
    assert torch.equal(joined[:, :12], first[:, :12])  # the note before the join is untouched
    report = seam.measure(s, z, p, v, join_s=join_s, note_off_s=0.75 * length)
    assert report["notes"] == 3 and report["context_frames"] == cfg.context_frames
    assert report["continued_length_s"] == pytest.approx((12 + cfg.num_frames - cfg.context_frames) / fps, abs=1e-3)
    assert all(np.isfinite(report[k]) for k in ("flux_join_db_p50", "flux_control_db_p50", "level_step_db_p50"))
    assert 0.0 <= report["flux_rank_p50"] <= 1.0
    assert seam.measure(s, z, p, v, join_s=join_s, note_off_s=0.75 * length) == report  # deterministic per point


def test_bad_joins_and_bundles_without_a_sampler_are_refused(tiny_flow_synth, tmp_path):
    s = tiny_flow_synth
    fps = s.flow.cfg.num_frames / (s.num_samples / s.sample_rate)
    z, p, v = torch.zeros(1, 2), torch.tensor([60]), torch.tensor([100])
    with pytest.raises(ValueError, match="context frames"):
        seam.measure(s, z, p, v, join_s=2 / fps, note_off_s=20 / fps)  # 2 frames < 8 context frames
    plain = Synthesizer(load_bundle(build_tiny_bundle(tmp_path / "plain")), device="cpu")
    with pytest.raises(ValueError, match="no flow model"):
        seam.measure(plain, z, p, v)
