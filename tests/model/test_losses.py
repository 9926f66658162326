"""Each VAE loss term on tiny inputs: signs, zero cases, and the curriculum weights at gamma 0 and 1."""

from __future__ import annotations

import math

import pytest
import torch

from synth.model import losses
from synth.model.vae import VAEConfig


def test_reconstruction_zero_and_positive():
    x = torch.randn(3, 4, 5)
    assert losses.reconstruction_loss(x, x).item() == 0.0
    assert losses.reconstruction_loss(x + 1, x).item() == pytest.approx(1.0)


def test_kl_zero_at_prior_and_positive_elsewhere():
    mu, lv = torch.zeros(4, 2), torch.zeros(4, 2)
    assert losses.kl_loss(mu, lv).item() == pytest.approx(0.0)
    assert losses.kl_loss(mu + 1, lv).item() == pytest.approx(1.0)  # 0.5 * 1^2 * 2 dims
    assert losses.kl_loss(mu, lv - 1).item() > 0


def test_spatial_regularizer_only_outside_disk():
    inside = torch.tensor([[0.5, 0.0], [0.0, -0.99]])
    assert losses.spatial_reg_loss(inside, 1.0).item() == 0.0
    outside = torch.tensor([[2.0, 0.0]])
    assert losses.spatial_reg_loss(outside, 1.0).item() == pytest.approx(1.0)
    assert losses.spatial_reg_loss(outside, 3.0).item() == 0.0


def test_neighbour_attracts_same_and_repels_close_different():
    inst = torch.tensor([0, 0, 1])
    mu = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    att, rep = losses.neighbour_loss(mu, inst, margin=0.5)
    assert att.item() == 0.0 and rep.item() == 0.0  # same together, different beyond the margin
    mu2 = torch.tensor([[0.0, 0.0], [0.2, 0.0], [0.0, 0.1]], requires_grad=True)
    att, rep = losses.neighbour_loss(mu2, inst, margin=0.5)
    assert att.item() == pytest.approx(0.2, abs=1e-5) and rep.item() > 0
    assert losses.neighbour_loss(mu2, inst, 0.5, attract_power=2.0)[0].item() == pytest.approx(0.04)
    att.backward(retain_graph=True)
    assert mu2.grad[1, 0] > 0 and mu2.grad[0, 0] < 0  # descent pulls the same-instrument pair together
    mu2.grad = None
    rep.backward()
    assert mu2.grad[2, 1] < 0  # descent pushes the other instrument away (up, +y)


def test_neighbour_without_pairs_is_zero():
    att, rep = losses.neighbour_loss(torch.zeros(2, 2), torch.tensor([0, 1]), 0.0)
    assert att.item() == 0.0 and rep.item() == 0.0
    att, rep = losses.neighbour_loss(torch.randn(3, 2), torch.tensor([4, 4, 4]), 1.0)
    assert rep.item() == 0.0 and att.item() > 0


def test_classifier_losses():
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    target = torch.tensor([0, 1])
    for fn in (losses.pitch_classifier_loss, losses.instrument_loss, losses.family_loss):
        assert fn(logits, target).item() < 1e-6
        assert fn(logits, 1 - target).item() > 10
    assert losses.instrument_loss(logits, torch.tensor([-1, -1])).item() == 0.0


def test_family_loss_ignores_notes_without_a_family():
    logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    assert losses.family_loss(logits, torch.tensor([0, -1])).item() < 1e-6
    assert losses.family_loss(logits, torch.tensor([-1, -1])).item() == 0.0


def test_curriculum_weights_at_ends():
    cfg = VAEConfig(w_fam=0.5, w_inst=0.7, w_nei=0.9, a_fam=2, a_inst=1, a_nei=0.5)
    w0 = losses.curriculum_weights(cfg, 0.0)
    assert w0["fam"] == 0.5 and w0["inst"] == 0.0 and w0["nei"] == 0.0
    w1 = losses.curriculum_weights(cfg, 1.0)
    assert w1["fam"] == 0.0 and w1["inst"] == 0.7 and w1["nei"] == 0.9
    wh = losses.curriculum_weights(cfg, 0.25)
    assert wh["fam"] == pytest.approx(0.5 * 0.75**2) and wh["nei"] == pytest.approx(0.9 * math.sqrt(0.25))


@pytest.mark.parametrize("switch,term", [("no_kl", "kl"), ("no_reg", "reg"), ("no_nei", "nei"), ("no_fam", "fam")])
def test_ablation_switches_zero_their_term(switch, term):
    cfg = VAEConfig(**{switch: True})
    for g in (0.0, 0.5, 1.0):
        assert losses.curriculum_weights(cfg, g)[term] == 0.0
