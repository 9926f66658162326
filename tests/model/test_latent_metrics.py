"""Latent metrics on hand-made maps: V_inst / V_pitch, kNN family accuracy, the pitch probe near chance."""

from __future__ import annotations

import numpy as np
import pytest

from synth.eval.latent import centroids, knn_family_accuracy, pitch_probe, variances


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
