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
