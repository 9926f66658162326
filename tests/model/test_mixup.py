"""Instrument mixup: the pitch table, blends made pitch by pitch, batches with pseudo-instruments, and training
that stays deterministic across a resume with mixup on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synth.model import losses
from synth.model.data import synthetic_notes
from synth.model.mixup import mixed_groups, note_table
from synth.model.train_vae import _batch, train_vae
from synth.model.vae import load_vae
from tests.model.test_vae import tiny_cfg


def test_note_table_indexes_every_instrument_pitch_and_marks_gaps():
    inst = torch.tensor([0, 0, 1, 1, -1, 1])
    pitch = torch.tensor([48, 50, 48, 49, 48, 80])  # a non-train note and one out of range are left out
    table = note_table(inst, pitch, num_instruments=2, pitch_min=48, num_pitches=3)
    assert table.tolist() == [[0, -1, 1], [2, 3, -1]]


def test_blends_are_one_weight_over_matching_pitches_of_two_instruments():
    notes = synthetic_notes(4, pitches=(48, 55), num_frames=8, dim=4, seed=3)
    x = notes.x.float()
    table = note_table(notes.instrument, notes.pitch, 4, 48, 8)
    mixed = mixed_groups(notes.x, notes.family, table, 48, n_groups=5, group_size=3,
                         rng=np.random.default_rng(0), lam_range=(0.3, 0.7))
    assert mixed.x.shape == (15, *x.shape[1:])
    assert mixed.group.tolist() == [g for g in range(5) for _ in range(3)]
    for g in range(5):
        rows = torch.nonzero(mixed.group == g).squeeze(1)
        assert len(set(mixed.pitch[rows].tolist())) == 3  # distinct pitches within a pseudo-instrument
        # find the parents and the weight: one (a, b, lam) must explain every note of the group
        cols = (mixed.pitch[rows] - 48).tolist()
        found = []
        for a in range(4):
            for b in range(4):
                if a == b:
                    continue
                xa, xb = x[table[a, cols]], x[table[b, cols]]
                lam = ((mixed.x[rows] - xb) * (xa - xb)).sum() / (xa - xb).square().sum()
                if 0.3 <= lam <= 0.7 and torch.allclose(lam * xa + (1 - lam) * xb, mixed.x[rows], atol=1e-5):
                    found.append((a, b))
                    fa, fb = notes.family[table[a, cols[0]]], notes.family[table[b, cols[0]]]
                    expected = int(fa) if fa == fb else -1
                    assert set(mixed.family[rows].tolist()) == {expected}
        assert found, f"group {g} is not a blend of two instruments at its pitches"


def test_blends_are_drawn_from_the_rng():
    notes = synthetic_notes(4, pitches=(48, 55), num_frames=8, dim=4, seed=3)
    table = note_table(notes.instrument, notes.pitch, 4, 48, 8)
    one = mixed_groups(notes.x, notes.family, table, 48, 3, 4, np.random.default_rng(7))
    two = mixed_groups(notes.x, notes.family, table, 48, 3, 4, np.random.default_rng(7))
    other = mixed_groups(notes.x, notes.family, table, 48, 3, 4, np.random.default_rng(8))
    assert torch.equal(one.x, two.x) and not torch.equal(one.x, other.x)


def test_no_blend_without_two_instruments_sharing_pitches():
    inst = torch.tensor([0, 1])
    pitch = torch.tensor([48, 49])
    x = torch.randn(2, 3, 5)
    table = note_table(inst, pitch, 2, 48, 2)
    mixed = mixed_groups(x, torch.tensor([0, 0]), table, 48, 4, 8, np.random.default_rng(0))
    assert mixed.x.shape == (0, 3, 5) and len(mixed.group) == 0


def test_batch_appends_pseudo_instruments_with_their_own_groups_and_no_class():
    notes = synthetic_notes(6, num_frames=24, dim=8, time_pool=2, seed=1)
    cfg = tiny_cfg(mix_groups=0.5, notes_per_instrument=4)
    table = note_table(notes.instrument, notes.pitch, 6, cfg.pitch_min, cfg.num_pitches)
    b = np.arange(16)  # 4 real groups -> 2 pseudo-instruments of 4 notes
    x, pitch, vel, inst, fam, group = _batch(notes, b, cfg, table, np.random.default_rng(0))
    assert x.shape[0] == pitch.shape[0] == vel.shape[0] == inst.shape[0] == fam.shape[0] == group.shape[0] == 24
    assert torch.equal(inst[:16], notes.instrument[:16]) and torch.equal(group[:16], inst[:16])
    assert (inst[16:] == -1).all() and (vel == 100).all()
    assert sorted(set(group[16:].tolist())) == [6, 7]  # after the real classes: never merged with an instrument
    off = _batch(notes, b, tiny_cfg(), table, np.random.default_rng(0))
    assert off[0].shape[0] == 16 and torch.equal(off[5], off[3])


def test_mixup_blends_notes_of_one_velocity_and_layers_stay_one_instrument():
    notes = synthetic_notes(4, pitches=(48, 55), num_frames=8, dim=4, seed=3, velocities=(40, 100, 127))
    # without velocities the table would hold whichever layer came last; with them, the 100 layer only
    table = note_table(notes.instrument, notes.pitch, 4, 48, 8, notes.velocity, 100)
    held = table[table >= 0]
    assert len(held) == 4 * 8 and (notes.velocity[held] == 100).all()
    cfg = tiny_cfg(mix_groups=1.0, notes_per_instrument=4, num_instruments=4, pitch_max=55)
    idx = np.flatnonzero(np.isin(notes.instrument.numpy(), [0, 1]))[::3][:16]
    x, pitch, vel, inst, fam, group = _batch(notes, idx, cfg, table, np.random.default_rng(0))
    assert torch.equal(vel[:16], notes.velocity[idx]) and len(set(vel[:16].tolist())) > 1
    assert (vel[16:] == 100).all()
    # the neighbour group of a real note is its instrument, whatever its velocity layer
    assert torch.equal(group[:16], notes.instrument[idx])


def test_family_loss_ignores_mixed_families():
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    assert losses.family_loss(logits, torch.tensor([0, -1])).item() < 1e-6
    assert losses.family_loss(logits, torch.tensor([-1, -1])).item() == 0.0


def test_neighbour_term_follows_groups_not_classes():
    cfg = tiny_cfg(margin=0.5)
    mu = torch.tensor([[0.0, 0.0], [0.3, 0.0]])
    out = {"mu": mu, "logvar": torch.zeros(2, 2), "recon": torch.zeros(2, 3), "inst_logits": torch.zeros(2, 6),
           "fam_logits": torch.zeros(2, 11), "pitch_logits": torch.zeros(2, 25)}
    args = (torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([-1, -1]), torch.tensor([0, 0]), 1.0)
    _, same = losses.vae_loss(cfg, out, *args, group=torch.tensor([7, 7]))
    _, apart = losses.vae_loss(cfg, out, *args, group=torch.tensor([7, 8]))
    assert same["att"] == pytest.approx(0.3, abs=1e-5) and same["rep"] == 0.0
    assert apart["att"] == 0.0 and apart["rep"] == pytest.approx(0.2**2, abs=1e-5)


@pytest.mark.parametrize("extra", [{}, {"con_dim": 4, "w_con": 1.0}], ids=["mixup", "mixup+contrastive"])
def test_training_with_mixup_resumes_to_the_same_weights(tmp_path, extra):
    notes = synthetic_notes(6, num_frames=24, dim=8, time_pool=2, seed=1)
    cfg = tiny_cfg(mix_groups=1.0, **extra)
    classes = sorted(set(notes.instrument_names))
    train_vae(notes, cfg, tmp_path / "a", classes, progress=False, max_steps=3)  # one whole epoch (3 batches)
    train_vae(notes, cfg, tmp_path / "a", classes, progress=False)
    train_vae(notes, cfg, tmp_path / "b", classes, progress=False)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["total"]) for r in log) and log[-1]["att"] > 0
    assert ("con" in log[-1]) == bool(extra)
    a, b = load_vae(tmp_path / "a").state_dict(), load_vae(tmp_path / "b").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
