"""Latent metrics on hand-made maps: V_inst / V_pitch, kNN family accuracy and its chance, the pitch probe near chance,
the fill share of the bounding box, velocity-freeness (V_velocity, velocity probe), wide velocity notes end to end."""

from __future__ import annotations

import numpy as np
import pytest

from synth.eval.latent import knn_family_accuracy, pitch_probe, variances
from synth.model.points import centroids


def test_variances_of_a_perfect_map():
    # 3 instruments at fixed points, 4 pitches each: no variance over pitch, all variance across instruments
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mu = np.repeat(pts, 4, axis=0)
    names = [f"i{k}" for k in range(3) for _ in range(4)]
    pitch = np.tile(np.arange(48, 52), 3)
    v_inst, v_pitch = variances(mu, names, pitch)
    assert v_inst == 0.0
    assert v_pitch == pytest.approx(pts.var(axis=0).sum())


def test_variances_when_pitch_leaks():
    pitch = np.tile(np.arange(48, 52), 3)
    mu = np.stack([(pitch - 50) * 0.1, np.zeros(12)], 1)  # the point moves with pitch only
    v_inst, v_pitch = variances(mu, [f"i{k}" for k in range(3) for _ in range(4)], pitch)
    assert v_inst > 0 and v_pitch == pytest.approx(0.0, abs=1e-12)


def test_knn_and_centroids():
    mu = np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]], float)
    names, c, f = centroids(mu, ["a", "a", "b", "b"], np.array([1, 1, 2, 2]))
    assert names == ["a", "b"] and np.allclose(c[1], [5, 5.05]) and list(f) == [1, 2]
    assert knn_family_accuracy(c, f, np.array([[0.2, 0.0], [4.0, 4.0]]), np.array([1, 2]), 1) == 1.0
    assert knn_family_accuracy(c, f, np.array([[0.2, 0.0]]), np.array([2]), 1) == 0.0


def test_pitch_probe_near_chance_without_pitch_information():
    rng = np.random.default_rng(0)
    tr_p, te_p = np.tile(np.arange(48, 73), 20), np.tile(np.arange(48, 73), 4)
    res = pitch_probe(rng.normal(size=(len(tr_p), 2)), tr_p, rng.normal(size=(len(te_p), 2)), te_p, steps=60)
    assert res["chance"] == pytest.approx(1 / 25) and res["accuracy"] < 3 * res["chance"]
    leak = pitch_probe(np.stack([tr_p, tr_p], 1).astype(float), tr_p, np.stack([te_p, te_p], 1).astype(float), te_p,
                       steps=100)
    assert leak["accuracy"] > 0.3


# -- issue 18: kNN chance, fill, velocity-freeness, wide notes --------------------------------------------------------
from synth.eval.latent import (  # noqa: E402
    core_mask, display_name, evaluate_latent, fill_share, knn_permuted_chance, matching_groups, reference_velocity,
    velocity_probe, velocity_shift, velocity_variance,
)


def _family_map(rng, n, centres, spread):
    fam = rng.integers(0, len(centres), n)
    return centres[fam] + spread * rng.normal(size=(n, 2)), fam


def test_knn_on_perfectly_separated_families_is_one_and_far_above_permuted_chance():
    rng = np.random.default_rng(0)
    centres = np.array([[-0.6, -0.6], [0.6, -0.6], [-0.6, 0.6], [0.6, 0.6]])
    c_tr, f_tr = _family_map(rng, 200, centres, 0.05)
    c_te, f_te = _family_map(rng, 40, centres, 0.05)
    assert knn_family_accuracy(c_tr, f_tr, c_te, f_te, 1) == 1.0
    assert knn_family_accuracy(c_tr, f_tr, c_te, f_te, 5) == 1.0
    assert knn_permuted_chance(c_tr, f_tr, c_te, f_te, 1) < 0.4  # ~ sum_f p_train(f) p_test(f) = ~0.25


def test_knn_on_a_random_map_scores_the_permuted_chance():
    rng = np.random.default_rng(1)
    p = np.array([0.4, 0.3, 0.2, 0.1])  # unequal families: chance is not 1/4 and not the majority share
    c_tr, c_te = rng.uniform(-1, 1, (400, 2)), rng.uniform(-1, 1, (300, 2))
    f_tr, f_te = rng.choice(4, 400, p=p), rng.choice(4, 300, p=p)
    chance1 = knn_permuted_chance(c_tr, f_tr, c_te, f_te, 1, permutations=100)
    expected = sum(np.mean(f_tr == f) * np.mean(f_te == f) for f in range(4))  # the nearest label is a random draw
    assert chance1 == pytest.approx(expected, abs=0.02)
    assert abs(knn_family_accuracy(c_tr, f_tr, c_te, f_te, 1) - chance1) < 0.08
    # k=5 votes towards the commonest training family: its chance is higher, and a random map still scores it
    chance5 = knn_permuted_chance(c_tr, f_tr, c_te, f_te, 5, permutations=100)
    assert chance5 > chance1 and abs(knn_family_accuracy(c_tr, f_tr, c_te, f_te, 5) - chance5) < 0.08


def test_fill_share_known_answers():
    # two points at opposite corners of a unit box: each covers a quarter disk of radius 0.1 * sqrt(2)
    assert fill_share(np.array([[0.0, 0.0], [1.0, 1.0]]), 0.1) == pytest.approx(2 * np.pi * 0.02 / 4, abs=0.003)
    # points everywhere on the box fill it
    g = np.stack(np.meshgrid(np.linspace(0, 1, 15), np.linspace(0, 1, 15)), -1).reshape(-1, 2)
    assert fill_share(g, 0.1) == 1.0 and fill_share(g, 0.05) > 0.9
    # all but two points in one corner (the two outliers stretch the box): a small share
    rng = np.random.default_rng(0)
    clump = np.concatenate([rng.uniform(0, 0.1, (300, 2)), [[1.0, 0.0], [0.0, 1.0]]])
    assert fill_share(clump, 0.1) < 0.12
    # a thin diagonal streak: a band of half-width 0.1 * diagonal, about 40% of the box
    streak = np.stack([np.linspace(0, 1, 200)] * 2, 1)
    assert 0.3 < fill_share(streak, 0.1) < 0.5 and fill_share(streak, 0.05) < 0.25
    assert np.isnan(fill_share(np.zeros((3, 2))))  # one point: no box


WIDE_LAYERS = (40, 70, 100, 127)


def _velocity_map(rng, n_inst, shift, pitch_drift=0.0, noise=0.01, sampled=False):
    """Instruments on a vertical line (x ~ 0), every pitch 36-84 at v100, the other layers at every 4th key (or at
    every key); the point moves by ``shift * (v - 100) / 64`` along x and ``pitch_drift * (p - 60) / 24`` along y."""
    mu, names, pitch, vel = [], [], [], []
    for i in range(n_inst):
        base = np.array([0.02 * rng.normal(), rng.uniform(-1, 1)])
        for v in WIDE_LAYERS:
            for p in range(36 + (i % 4 if v != 100 else 0), 85, 4 if sampled and v != 100 else 1):
                mu.append(base + [shift * (v - 100) / 64, pitch_drift * (p - 60) / 24] + noise * rng.normal(size=2))
                names.append(f"i{i:03d}")
                pitch.append(p)
                vel.append(v)
    return np.array(mu), names, np.array(pitch), np.array(vel)


def test_matching_groups_pair_only_the_pitches_played_at_several_velocities():
    names = ["a"] * 5 + ["b"] * 2
    pitch = np.array([60, 61, 60, 60, 62, 60, 61])
    vel = np.array([100, 100, 40, 40, 127, 100, 40])
    groups = matching_groups(names, pitch, vel)
    assert [g.tolist() for g in groups] == [[2, 0]]  # a@60 at 40 (first of the repeats) and 100; nothing else
    assert reference_velocity(vel) == 100 and reference_velocity(np.array([40, 70, 70])) == 70
    assert core_mask(np.array([47, 48, 72, 73, 60]), np.array([100, 100, 100, 100, 40])).tolist() == [
        False, True, True, False, False]


def test_velocity_free_map_has_small_V_velocity_and_a_probe_near_chance():
    rng = np.random.default_rng(0)
    mu, names, pitch, vel = _velocity_map(rng, 24, shift=0.0, pitch_drift=0.05, sampled=True)
    ref = vel == 100
    v_inst, _ = variances(mu[ref], [n for n, r in zip(names, ref) if r], pitch[ref])
    v_vel, groups = velocity_variance(mu, names, pitch, vel)
    assert groups > 0 and v_vel / v_inst < 0.5  # velocity moves the point less than pitch does
    mu_te, names_te, pitch_te, vel_te = _velocity_map(rng, 12, shift=0.0, pitch_drift=0.05, sampled=True)
    g_tr = np.concatenate(matching_groups(names, pitch, vel))
    g_te = np.concatenate(matching_groups(names_te, pitch_te, vel_te))
    res = velocity_probe(mu[g_tr], vel[g_tr], mu_te[g_te], vel_te[g_te], steps=150)
    assert res["chance"] == pytest.approx(1 / 4) and res["layers"] == 4
    assert res["accuracy"] < 1.6 * res["chance"]
    shift = velocity_shift(mu, names, pitch, vel)
    assert set(shift) == {"40", "70", "127"} and all(abs(s["dx"]) < 0.01 for s in shift.values())


def test_a_map_where_velocity_moves_the_point_is_caught():
    rng = np.random.default_rng(0)
    mu, names, pitch, vel = _velocity_map(rng, 24, shift=0.2, pitch_drift=0.05, sampled=True)
    ref = vel == 100
    v_inst, _ = variances(mu[ref], [n for n, r in zip(names, ref) if r], pitch[ref])
    v_vel, _ = velocity_variance(mu, names, pitch, vel)
    assert v_vel / v_inst > 2
    mu_te, names_te, pitch_te, vel_te = _velocity_map(rng, 12, shift=0.2, pitch_drift=0.05, sampled=True)
    g_tr = np.concatenate(matching_groups(names, pitch, vel))
    g_te = np.concatenate(matching_groups(names_te, pitch_te, vel_te))
    res = velocity_probe(mu[g_tr], vel[g_tr], mu_te[g_te], vel_te[g_te], steps=150)
    assert res["accuracy"] > 0.8  # the four layers sit apart along x (chance 0.25): near-perfect
    shift = velocity_shift(mu, names, pitch, vel)
    assert shift["40"]["dx"] == pytest.approx(0.2 * -60 / 64, abs=0.01) and shift["127"]["dx"] > 0.05


def test_pitch_probe_balanced_accuracy_ignores_unequal_pitch_counts():
    rng = np.random.default_rng(0)
    pitches = np.concatenate([np.repeat(np.arange(48, 73), 6), np.arange(21, 109)])  # the core is denser
    res = pitch_probe(rng.normal(size=(len(pitches), 2)), pitches, rng.normal(size=(len(pitches), 2)), pitches,
                      steps=60)
    assert res["classes"] == 88 and res["balanced_chance"] == pytest.approx(1 / 88)
    assert res["chance"] == pytest.approx(7 / len(pitches)) and res["balanced_accuracy"] < 4 / 88


def test_display_name():
    assert display_name("fluidr3_000_acoustic_grand_piano") == "acoustic grand piano (fluidr3)"
    assert display_name("synth_bass_001") == "synth_bass_001" and display_name("guitar_acoustic_010") == \
        "guitar_acoustic_010"


def _tiny_vae(**kw):
    import torch

    from synth.model.vae import TimbreVAE, VAEConfig

    torch.manual_seed(0)
    cfg = VAEConfig(num_frames=24, dim=8, time_pool=2, enc_channels=(16, 8), pool_bins=2, hidden=32, cls_hidden=16,
                    num_instruments=12, **kw)
    return TimbreVAE(cfg).eval()


def test_evaluate_latent_on_wide_velocity_notes_reports_every_new_number(tmp_path):
    from synth.eval.latent_cli import _clean
    from synth.model.data import synthetic_notes

    wide = dict(pitches=(21, 108), num_frames=24, dim=8, time_pool=2, velocities=(40, 100))
    train, test = synthetic_notes(12, seed=0, **wide), synthetic_notes(6, seed=1, **wide)
    vae = _tiny_vae(pitch_min=21, pitch_max=108, velocity_cond=True)
    res = evaluate_latent(vae, train, test, png=tmp_path / "map.png", probe_steps=5)
    assert res["velocities"] == [40, 100] and res["reference_velocity"] == 100 and res["pitch_range"] == [21, 108]
    assert res["core_notes"] == 6 * 25 and res["core_pitch_probe"]["classes"] == 25
    assert res["pitch_probe"]["classes"] == 88 and res["velocity_groups"] == 6 * 88
    assert res["velocity_probe"]["layers"] == 2 and res["velocity_probe"]["chance"] == 0.5
    for key in ("V_velocity", "velocity_ratio", "fill_share", "fill_share_05", "knn_chance_uniform",
                "knn_chance_permuted_k1", "knn_chance_permuted_k5", "core_V_inst", "core_ratio",
                "core_knn_family_acc_k1", "core_knn_family_acc_k5"):
        assert np.isfinite(res[key]), key
    assert 0 < res["fill_share"] <= 1 and res["fill_points"] == 18 and set(res["velocity_shift"]) == {"40"}
    assert (tmp_path / "map.png").stat().st_size > 1000
    # V_inst / V_pitch use the velocity-100 notes only: the same numbers as on the split without the 40 layer
    keep = [i for i in range(len(test)) if int(test.velocity[i]) == 100]
    only100 = evaluate_latent(vae, train, test.subset(keep), probe_steps=5)
    assert res["V_inst"] == pytest.approx(only100["V_inst"]) and res["V_pitch"] == pytest.approx(only100["V_pitch"])
    assert only100["velocity_probe"] is None and np.isnan(only100["V_velocity"])
    clean = _clean(only100)
    assert clean["V_velocity"] is None and clean["velocity_probe"] is None


def test_evaluate_latent_on_the_core_grid_copies_its_numbers_into_core():
    from synth.model.data import synthetic_notes

    train = synthetic_notes(12, num_frames=24, dim=8, time_pool=2, seed=0)
    test = synthetic_notes(6, num_frames=24, dim=8, time_pool=2, seed=1)
    res = evaluate_latent(_tiny_vae(), train, test, probe_steps=5)
    assert res["core_notes"] == res["notes"] == 150 and res["core_ratio"] == res["ratio"]
    assert res["core_pitch_probe"] == res["pitch_probe"] and res["pitch_probe"]["chance"] == pytest.approx(1 / 25)
    assert res["velocities"] == [100] and res["velocity_probe"] is None and res["velocity_groups"] == 0
