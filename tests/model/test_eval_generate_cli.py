"""``synth eval generate`` end to end on tiny bundles and a fake embedding cache (with stand-in real audio for the
flow run: every measure runs for real, torchcrepe and pYIN included), plus the summary helpers on known inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from synth.cli import main
from synth.model.bundle import build_tiny_bundle
from tests.model.fakecache import write_fake_audio, write_fake_cache
from tests.model.widebundle import build_wide_tiny_bundle

FRAMES = 150  # 2 s notes: room for the held part (0.25 s .. the note-off at 1.5 s) the sound measures read


def _run(capsys, args) -> dict:
    capsys.readouterr()
    assert main(["eval", "generate", "--threads", "1", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _finite(d: dict, keys) -> None:
    for k in keys:
        assert d[k] is not None and math.isfinite(d[k]), (k, d[k])


def test_eval_generate_flow_bundle_reports_every_measure(tmp_path, capsys):
    """A velocity-conditioned flow bundle over MIDI 21-108; the cache spans 56-104 at three velocities; seed 6
    samples held-out notes at MIDI 60, 87, 96 and 103 (two above crepe's range) and velocities 40 and 100."""
    emb = write_fake_cache(tmp_path / "emb", num_frames=FRAMES, pitches=(56, 104), velocities=(40, 100, 127))
    write_fake_audio(tmp_path / "notes", emb, keep=lambda split, m: split == "test" or m["pitch"] == 60)
    bundle = build_wide_tiny_bundle(tmp_path / "bundle", num_frames=FRAMES)
    res = _run(capsys, ["--bundle", str(bundle), "--emb", str(emb), "--data", str(tmp_path / "notes"),
                        "--max-notes", "4", "--train-notes", "2", "--random-points", "2", "--spread-points", "4",
                        "--guidance", "1", "--seed", "6", "--seam-notes", "3"])
    assert res["pitch_range"] == [21, 108] and res["velocity_layers"] == [40, 70, 100, 127]
    assert res["flow"]["guidance"] == 2.0 and res["flow"]["guidance_sweep"] == [1.0] and res["note_off_s"] == 1.5
    held = res["held_out"]
    assert held["notes"] == 4 and held["real_audio"] and res["train"]["notes"] == 2
    played = {"codec", "flow", "generator", "vae", "nearest5", "flow_g1"}
    unlocked = {"flow_unlocked", "generator_unlocked", "vae_unlocked"}
    assert set(held["pitch_accuracy"]) == played | unlocked | {"real"}
    for key in ("pitch_accuracy", "pitch_accuracy_pyin"):
        assert all(0.0 <= a <= 1.0 for a in held[key].values())
    assert held["pitch_accuracy"]["real"] == 1.0  # crepe on the stand-in tones (the two it can track)
    for key in ("mrstft_to_real", "logmel_l1_to_real"):
        assert set(held[key]) == played | unlocked
        _finite(held[key], played)
    for key in ("mrstft_to_real_note_mean", "logmel_l1_to_real_note_mean", "mfcc_to_real_mean"):
        assert set(held[key]) == played
        _finite(held[key], ["codec"])
    pairs = held["paired"]
    for name in ("flow_closer_than_generator", "flow_closer_than_nearest5", "generator_closer_than_vae",
                 "flow_g1_closer_than_generator"):
        assert 0.0 <= pairs[name]["mrstft"] <= 1.0 and pairs[name]["notes"] == 4
    assert held["paired_target"] == 0.6
    assert set(held["frame_mse_to_real_codes"]) == {"flow", "generator", "vae", "nearest5", "flow_g1"}
    _finite(held["frame_mse_to_real_codes"], ["flow", "generator", "vae", "nearest5"])
    # distribution distance: every played condition, the codec (floor) included, and the real split-half noise
    dist = held["distribution"]
    assert "mfcc" in dist["embedding"] and dist["measure"] == "frechet"
    assert set(dist["frechet_to_real"]) == played
    _finite(dist["frechet_to_real"], played)
    assert dist["real_split_half"] is not None
    # sound reports against the real notes
    assert set(held["sound"]) == {"codec", "flow", "generator", "vae", "nearest5"}
    rep = held["sound"]["flow"]
    assert {"release", "noise", "attack_by_family", "timbre"} <= set(rep)
    assert rep["release"]["real"]["share_reaching_40db"] == 1.0
    # pitch over the range, by octave, both trackers, real notes alongside; crepe only over MIDI 24-95
    assert held["pitch_accuracy_crepe_notes"] == 2
    assert set(held["pitch_by_octave"]) == {"60-71", "84-95", "96-107"}
    for lab, row in held["pitch_by_octave"].items():
        assert row["pyin"]["flow"] is not None and row["pyin"]["real"] is not None
        assert (row["crepe"] is None) == (lab == "96-107")
    assert "pyin only" in held["pitch_by_octave"]["96-107"]["tracker"]
    rng = held["pitch_21_108"]
    assert "pYIN outside" in rng["rule"] and rng["notes_pyin_only"] == 2
    assert set(rng["where_real_correct"]) == played | unlocked | {"real"}
    # velocity layers: level and brightness per layer, brightness slope per family
    vel = held["velocity"]
    assert vel["bundle_velocity_conditioned"] and set(vel["by_layer"]) == {"40", "100"}
    for row in vel["by_layer"].values():
        _finite(row["level_dbfs_p50"], ["real", "flow", "generator"])
        _finite(row["centroid_over_f0_p50"], ["real", "flow"])
    assert "all" in vel["brightness_slope_by_family"]
    # timbre spread at C4 over instrument points, relative to the real instruments
    spread = res["timbre_spread_c4"]
    assert spread["instruments"] == 4 and spread["held_out"] == 3 and spread["train"] == 1
    assert spread["spread"]["real"]["mean_pairwise"] > 0
    assert set(spread["ratio_to_real"]) == played
    _finite({k: v["mean_pairwise"] for k, v in spread["ratio_to_real"].items()}, played)
    # the guidance sweep table and the targets
    sweep = res["guidance_sweep"]
    assert [r["guidance"] for r in sweep["rows"]] == [1.0, 2.0] and sweep["steps"] == 2
    assert sweep["rows"][1]["condition"] == "flow" and sweep["rows"][0]["frechet_to_real"] is not None
    t = res["targets"]
    assert t["model"] == "flow" and t["closer_than_generator_mrstft"]["target"] == 0.6
    assert t["spread_ratio_c4"]["value"] is not None
    assert not res["train"]["real_audio"]  # only the test notes and the C4 notes have stand-in audio here
    _finite(res["train"]["frame_mse_to_real_codes"], ["flow", "generator", "vae", "nearest5"])
    rp = res["random_points"]
    assert 0.0 <= rp["pitch_accuracy_flow"] <= 1.0 and 0.0 <= rp["pitch_accuracy"] <= 1.0
    seams = res["continuation_seam"]  # one continuation per note, joined 1 s in (2/3 of the note-off)
    assert seams["notes"] == 3 and seams["join_s"] == 1.0
    _finite(seams, ["flux_join_db_p50", "flux_control_db_p50", "level_step_db_p50", "flux_rank_p50"])


def test_eval_generate_without_flow(tmp_path, capsys):
    """A bundle without a flow sampler (no flow conditions, no sweep), one velocity layer; the training split has
    stand-in audio (the generalization-gap distances), the held-out split none (pitch and code measures only)."""
    emb = write_fake_cache(tmp_path / "emb")
    write_fake_audio(tmp_path / "notes", emb, splits=("train",), seconds=0.32, note_off_s=0.24)
    bundle = build_tiny_bundle(tmp_path / "bundle", refine_vae=True)
    res = _run(capsys, ["--bundle", str(bundle), "--emb", str(emb), "--data", str(tmp_path / "notes"),
                        "--max-notes", "3", "--train-notes", "2", "--random-points", "0", "--spread-points", "0",
                        "--guidance", "1,3"])
    held, train = res["held_out"], res["train"]
    assert res["flow"] is None and res["guidance_sweep"] is None and not held["real_audio"]
    assert "continuation_seam" not in res  # continuations are the flow sampler's
    conditions = {"codec", "generator", "generator_unlocked", "vae", "vae_unlocked", "nearest5"}
    assert set(held["pitch_accuracy"]) == conditions and set(train["pitch_accuracy"]) == conditions | {"real"}
    mse = held["frame_mse_to_real_codes"]
    assert mse["generator"] == pytest.approx(mse["vae"], rel=1e-6)  # an untrained refiner plays the VAE's frames
    assert "velocity" not in held and "paired" not in held  # both need the real notes
    assert train["real_audio"] and set(train["paired"]) == {"generator_closer_than_vae",
                                                            "generator_closer_than_nearest5"}
    _finite(train["mrstft_to_real_note_mean"], ["codec", "generator", "vae", "nearest5"])
    assert "distribution" not in train and "sound" not in train  # held-out only
    assert res["targets"]["model"] == "generator"


def test_bad_guidance_is_refused(tmp_path, capsys):
    bundle = build_tiny_bundle(tmp_path / "bundle", flow=True)
    assert main(["eval", "generate", "--bundle", str(bundle), "--guidance", "1,x"]) == 2
    assert "--guidance" in capsys.readouterr().err


def test_paired_share_is_per_note_and_skips_undefined():
    from synth.eval.generate import closer_share, paired

    a = np.array([1.0, 2.0, 3.0, np.nan])
    b = np.array([2.0, 1.0, 4.0, 0.0])
    assert closer_share(a, b) == pytest.approx(2 / 3, abs=1e-4)
    dist = {"flow": {"mrstft": a, "mfcc": a}, "generator": {"mrstft": b, "mfcc": b[::-1].copy()}}
    out = paired(dist, [("flow", "generator"), ("flow", "vae")])
    assert set(out) == {"flow_closer_than_generator"}
    assert out["flow_closer_than_generator"]["mrstft"] == pytest.approx(2 / 3, abs=1e-4)
    assert out["flow_closer_than_generator"]["mfcc"] == pytest.approx(1 / 3, abs=1e-4)


def test_frechet_is_zero_for_the_same_gaussian_and_grows_with_a_shift():
    from synth.eval.generate import frechet

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    assert frechet(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet(x, x + 2.0) == pytest.approx(12.0, rel=1e-6)  # |shift|^2 = 3 * 4, same covariance
    assert math.isnan(frechet(x[:1], x))


def test_octaves_and_the_crepe_limit():
    from synth.eval.generate import octave_label, pitch_21_108, pitch_by_octave

    assert [octave_label(p) for p in (21, 23, 24, 60, 95, 96, 108)] == \
        ["21-23", "21-23", "24-35", "60-71", "84-95", "96-107", "108-108"]
    pitches = np.array([22, 60, 100, 108])
    res = {"real": {"crepe": np.array([False, True, False, False]), "pyin": np.array([True, True, True, True])},
           "flow": {"crepe": np.array([True, True, False, False]), "pyin": np.array([False, False, True, False])}}
    by = pitch_by_octave(res, pitches)
    assert by["60-71"]["crepe"]["flow"] == 1.0 and by["96-107"]["crepe"] is None and by["21-23"]["crepe"] is None
    assert "pyin only" in by["108-108"]["tracker"] and by["60-71"]["tracker"] == "crepe+pyin"
    rng = pitch_21_108(res, pitches)  # crepe at MIDI 60 only, pYIN at 22, 100 and 108
    assert rng["accuracy"]["real"] == 1.0 and rng["accuracy"]["flow"] == pytest.approx(0.5)
    assert rng["notes_pyin_only"] == 3 and rng["where_real_correct"]["flow"] == pytest.approx(0.5)


def test_brightness_slope_recovers_a_known_slope_with_pitch_as_covariate():
    from synth.eval.generate import _slope

    v = np.array([40, 70, 100, 127, 40, 70, 100, 127], float)
    p = np.array([48, 50, 60, 72, 84, 60, 55, 40], float)
    y = 0.8 * v / 127 - 0.3 * (p - 60) / 12 + 1.0
    assert _slope(y, v, p) == pytest.approx(0.8, abs=1e-4)
    assert _slope(y[:2], v[:2], p[:2]) is None  # too few notes
    assert _slope(np.ones(4), np.full(4, 100.0), p[:4]) is None  # one velocity


def test_spectral_distances_match_audio_metrics_per_note_and_over_the_batch():
    import torch

    from synth.eval.audio_metrics import log_mel_l1, mrstft_distance
    from synth.eval.generate import spectral_distances

    g = torch.Generator().manual_seed(0)
    real = torch.randn(4, 12000, generator=g) * 0.1
    waves = real + 0.05 * torch.randn(4, 12000, generator=g) * torch.arange(4)[:, None]
    waves[1] = 0.0  # a silent note
    d = spectral_distances(waves, real, 24000)
    assert d["mrstft_batch"] == pytest.approx(mrstft_distance(waves, real), rel=1e-4)
    assert d["logmel_batch"] == pytest.approx(log_mel_l1(waves, real, 24000), rel=1e-5)
    for i in range(4):
        assert d["mrstft"][i] == pytest.approx(mrstft_distance(waves[i : i + 1], real[i : i + 1]), rel=1e-4)
        assert d["logmel"][i] == pytest.approx(log_mel_l1(waves[i : i + 1], real[i : i + 1], 24000), rel=1e-5)
