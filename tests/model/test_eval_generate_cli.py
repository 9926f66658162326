"""``synth eval generate`` end to end on a tiny bundle and a fake embedding cache (no real audio: distances to the
real notes are skipped, everything else runs for real, torchcrepe included)."""

from __future__ import annotations

import json

import pytest

from synth.cli import main
from synth.model.bundle import build_tiny_bundle
from tests.model.fakecache import write_fake_cache


@pytest.mark.parametrize("refine_vae", [False, True])
def test_eval_generate_reports_every_condition(tmp_path, capsys, refine_vae):
    emb = write_fake_cache(tmp_path / "emb")
    bundle = build_tiny_bundle(tmp_path / "bundle", refine_vae=refine_vae)
    capsys.readouterr()
    assert main(["eval", "generate", "--bundle", str(bundle), "--emb", str(emb), "--data", str(tmp_path / "none"),
                 "--max-notes", "4", "--train-notes", "3", "--random-points", "3", "--threads", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    held = res["held_out"]
    assert held["notes"] == 4 and res["train"]["notes"] == 3
    assert set(held["pitch_accuracy"]) == {"codec", "generated", "generated_unlocked", "vae", "vae_unlocked", "nearest5"}
    assert all(0.0 <= a <= 1.0 for a in held["pitch_accuracy"].values())
    mse = held["frame_mse_to_real_codes"]
    assert set(mse) == {"generated", "vae", "nearest5"} and all(v > 0 for v in mse.values())
    if refine_vae:  # an untrained refiner plays exactly the VAE decoder's frames
        assert mse["generated"] == pytest.approx(mse["vae"], rel=1e-6)
    else:
        assert mse["generated"] != pytest.approx(mse["vae"], rel=1e-3)
    assert 0.0 <= res["random_points"]["pitch_accuracy"] <= 1.0


def test_win_rate_is_paired_per_note():
    import torch

    from synth.eval.generate_cli import _win_rate

    torch.manual_seed(0)
    t = torch.arange(24000) / 24000
    real = torch.stack([torch.sin(2 * torch.pi * f * t) for f in (220.0, 330.0, 440.0)]) * 0.3
    near, far = real + 0.01 * torch.randn_like(real), real + 0.2 * torch.randn_like(real)
    assert _win_rate(near, far, real, 24000) == {"mrstft": 1.0, "logmel": 1.0}
    assert _win_rate(far, near, real, 24000) == {"mrstft": 0.0, "logmel": 0.0}
    mixed = torch.stack([near[0], far[1], near[2]])
    assert _win_rate(mixed, torch.stack([far[0], near[1], far[2]]), real, 24000)["logmel"] == pytest.approx(2 / 3)
