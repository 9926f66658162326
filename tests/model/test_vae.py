"""The VAE: shapes, config JSON round trip, a few deterministic training steps with resume on a tiny config."""

from __future__ import annotations

import json

import torch

from synth.model.data import instrument_batches, synthetic_notes
from synth.model.train_vae import train_vae
from synth.model.vae import TimbreVAE, VAEConfig, group_mean, load_vae


def tiny_cfg(**kw) -> VAEConfig:
    base = dict(num_frames=24, dim=8, time_pool=2, enc_channels=(16, 8), pool_bins=2, hidden=32, cls_hidden=16,
                num_instruments=6, batch_size=50, epochs=3, warmup_epochs=1)
    base.update(kw)
    return VAEConfig(**base)


def test_shapes_and_pitch_only_in_decoder():
    cfg = tiny_cfg()
    m = TimbreVAE(cfg).eval()
    x = torch.randn(5, 30, 8)  # longer than T: cropped
    mu, lv = m.encode(x)
    assert mu.shape == (5, 2) and lv.shape == (5, 2)
    y = m.decode(mu, torch.tensor([48, 50, 60, 70, 72]))
    assert y.shape == (5, 24, 8)
    # the encoder does not take pitch at all: its signature is encode(x)
    assert m.decode(mu[:1], torch.tensor([48])).shape == (1, 24, 8)


def test_encoder_ignores_the_skipped_pitch_feature_dims_but_the_decoder_writes_them():
    m = TimbreVAE(tiny_cfg(enc_skip_dims=1)).eval()
    x = torch.randn(3, 24, 8)
    other = x.clone()
    other[..., -1] = torch.randn(3, 24) * 5  # a different "pitch feature"
    mu_a, lv_a = m.encode(x)
    mu_b, lv_b = m.encode(other)
    assert torch.equal(mu_a, mu_b) and torch.equal(lv_a, lv_b)
    other[..., 0] += 1.0  # a learned dim does reach the encoder
    assert not torch.equal(m.encode(other)[0], mu_a)
    assert m.decode(mu_a, torch.tensor([48, 60, 72])).shape == (3, 24, 8)


def test_group_mean_replaces_each_row_by_its_groups_mean():
    z = torch.tensor([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0], [4.0, 5.0]])
    out = group_mean(z, torch.tensor([7, 7, 2, 7]))
    assert torch.allclose(out, torch.tensor([[2.0, 3.0], [2.0, 3.0], [10.0, 10.0], [2.0, 3.0]]))


def test_config_json_roundtrip():
    cfg = tiny_cfg(no_kl=True, margin=0.3)
    back = VAEConfig.from_json(cfg.to_json())
    assert back == cfg


def test_instrument_batches_hold_whole_instruments():
    names = ["b"] * 3 + ["a"] * 3 + ["c"] * 3
    import numpy as np

    batches = instrument_batches(names, 6, np.random.default_rng(0), group=3)
    assert sorted(int(i) for b in batches for i in b) == list(range(9))
    assert len({names[i] for i in batches[0]}) == 2
    small = instrument_batches(names, 4, np.random.default_rng(0), group=2)
    covered = sorted(int(i) for b in small for i in b)
    assert len(covered) >= 8 and len(set(covered)) == len(covered)  # a last single note is dropped


def test_training_steps_reduce_loss_and_resume(tmp_path):
    notes = synthetic_notes(6, num_frames=24, dim=8, time_pool=2, seed=1)
    cfg = tiny_cfg()
    classes = sorted(set(notes.instrument_names))
    train_vae(notes, cfg, tmp_path / "a", classes, progress=False, max_steps=6)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    for key in ("rec", "kl", "reg", "nei", "pitch", "inst", "fam"):
        assert key in log[-1]
    assert log[-1]["total"] < log[0]["total"] or log[-1]["rec"] < log[0]["rec"]
    m = load_vae(tmp_path / "a")
    assert (tmp_path / "a" / "ckpt.pt").exists() and (tmp_path / "a" / "vae.json").exists()
    # resume: the next call continues from the saved epoch to the configured end
    train_vae(notes, cfg, tmp_path / "a", classes, progress=False)
    log2 = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log2] == list(range(1, cfg.epochs + 1))
    # determinism: an uninterrupted run gives the same weights
    train_vae(notes, cfg, tmp_path / "b", classes, progress=False)
    a, b = load_vae(tmp_path / "a").state_dict(), load_vae(tmp_path / "b").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert m is not None


def test_training_pass_and_encode_share_the_encoder_path():
    torch.manual_seed(0)
    m = TimbreVAE(tiny_cfg()).train()
    out = m(torch.randn(4, 8, 12), torch.tensor([48, 50, 52, 54]))
    assert set(out) == {"mu", "logvar", "z", "recon", "inst_logits", "fam_logits", "pitch_logits"}
    x = torch.randn(3, 24, 8)
    m.eval()
    mu, _ = m.encode(x)
    assert torch.equal(mu, m.to_mu(m.encode_hidden(m.prep(x))))  # the same path as training
    assert torch.equal(mu, m(m.prep(x), torch.tensor([48, 50, 52]))["mu"])


def test_noteset_subset_keeps_every_field_aligned():
    notes = synthetic_notes(4, num_frames=8, dim=4, seed=2)
    idx = [5, 0, 30]
    sub = notes.subset(idx)
    assert len(sub) == 3 and torch.equal(sub.x, notes.x[idx]) and torch.equal(sub.pitch, notes.pitch[idx])
    assert sub.instrument_names == [notes.instrument_names[i] for i in idx]
    assert torch.equal(sub.family, notes.family[idx]) and torch.equal(sub.instrument, notes.instrument[idx])
    assert sub.note_strs == [notes.note_strs[i] for i in idx] and sub.family_names == notes.family_names
