"""The command lines end to end on a tiny fake cache: train vae -> eval latent -> train generator -> bundle build."""

from __future__ import annotations

import json

import numpy as np

from synth.cli import main
from synth.model.bundle import build_tiny_bundle, load_bundle
from tests.model.fakecache import write_fake_cache

TINY_VAE = ["--set", "time_pool=2", "--set", "enc_channels=16,8", "--set", "pool_bins=2", "--set", "hidden=32",
            "--set", "batch_size=50", "--set", "warmup_epochs=1"]
TINY_GEN = ["--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "batch_size=8",
            "--set", "warmup_steps=2", "--set", "total_steps=20"]


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_pipeline(tmp_path, capsys):
    emb = write_fake_cache(tmp_path / "emb")
    vae_dir, gen_dir = tmp_path / "vae", tmp_path / "gen"
    assert main(["train", "vae", "--emb", str(emb), "--out", str(vae_dir), "--epochs", "2", "--no-progress",
                 "--ablation", "no_kl", *TINY_VAE]) == 0
    cfg = json.loads((vae_dir / "vae.json").read_text())
    assert cfg["no_kl"] is True and cfg["num_instruments"] == 8 and cfg["enc_channels"] == [16, 8]
    capsys.readouterr()
    png = tmp_path / "map.png"
    assert main(["eval", "latent", "--vae", str(vae_dir), "--emb", str(emb), "--json", "--png", str(png),
                 "--probe-steps", "20"]) == 0
    res = last_json(capsys)
    for key in ("V_inst", "V_pitch", "ratio", "spread_x", "spread_y", "pitch_probe", "knn_family_acc_k5"):
        assert key in res
    assert res["instruments"] == 3 and png.stat().st_size > 1000
    assert main(["train", "generator", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(gen_dir),
                 "--steps", "4", "--valid-every", "2", "--valid-notes", "8", "--no-progress", *TINY_GEN]) == 0
    log = [json.loads(x) for x in (gen_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and "valid_free_mse" in log[-1]
    # a finished schedule can be lengthened on resume; other config changes are refused with the reason
    assert main(["train", "generator", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(gen_dir),
                 "--steps", "6", "--valid-every", "2", "--valid-notes", "8", "--no-progress",
                 "--set", "total_steps=30"]) == 0
    log = [json.loads(x) for x in (gen_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6
    capsys.readouterr()
    assert main(["train", "generator", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(gen_dir),
                 "--steps", "8", "--no-progress", "--set", "d_model=32"]) == 2
    assert "d_model" in capsys.readouterr().err
    codec_dir = build_tiny_bundle(tmp_path / "tinyb") / "codec"
    capsys.readouterr()
    out = tmp_path / "bundle"
    assert main(["bundle", "build", "--codec", str(codec_dir), "--vae", str(vae_dir), "--gen", str(gen_dir),
                 "--emb", str(emb), "--out", str(out)]) == 0
    b = load_bundle(out, device="cpu")
    assert {i.split for i in b.instruments} == {"train", "valid", "test"} and len(b.instruments) == 14
    assert np.allclose(b.stats["std"], 0.5)


def test_refining_generator_trains_with_rollouts_from_the_cli_and_starts_at_the_vae_decoder(tmp_path, capsys):
    import torch

    from synth.model.data import load_notes, train_instruments
    from synth.model.generator import Generator, GeneratorConfig
    from synth.model.train_generator import free_running_error
    from synth.model.vae import load_vae

    emb = write_fake_cache(tmp_path / "emb")
    vae_dir, gen_dir = tmp_path / "vae", tmp_path / "gen"
    assert main(["train", "vae", "--emb", str(emb), "--out", str(vae_dir), "--epochs", "1", "--no-progress",
                 "--set", "no_fam=true", *TINY_VAE]) == 0
    vae = load_vae(vae_dir)
    assert vae.cfg.no_fam is True
    assert main(["train", "generator", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(gen_dir),
                 "--steps", "2", "--valid-every", "2", "--valid-notes", "8", "--no-progress",
                 "--set", "refine_vae=true", "--set", "rollout_weight=1", "--set", "rollout_batch=3", *TINY_GEN]) == 0
    cfg = GeneratorConfig.load(gen_dir / "generator.json")
    assert cfg.refine_vae is True and cfg.rollout_weight == 1.0
    log = [json.loads(x) for x in (gen_dir / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 0 and log[0]["vae_decoder_valid_mse"] > 0  # the bar, logged before training
    assert log[-1]["step"] == 2 and "valid_free_mse" in log[-1]
    # before training, a refining generator plays exactly the VAE decoder's frames
    valid = load_notes(emb, "valid", train_instruments(emb), cfg.num_frames, 1, (cfg.pitch_min, cfg.pitch_max))
    with torch.no_grad():
        mu = vae.encode(valid.x.float())[0]
        decoder_mse = float(((vae.decode(mu, valid.pitch) - valid.x.float()) ** 2).mean())
    fresh = Generator(cfg).eval()
    assert abs(free_running_error(fresh, vae, mu, valid.pitch, valid.x) - decoder_mse) < 1e-6
    assert main(["train", "generator", "--emb", str(emb), "--vae", str(vae_dir), "--out", str(tmp_path / "g2"),
                 "--steps", "1", "--no-progress", "--set", "refine_vae=perhaps"]) == 2
    assert "true or false" in capsys.readouterr().err
