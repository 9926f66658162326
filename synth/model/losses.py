"""The seven loss terms of the timbre VAE and the curriculum that weights them (pGESAM, MODEL.md).

Each term is a small pure function on tensors so that tests can check signs and zero cases in isolation;
``vae_loss`` combines them with the config's weights, the curriculum and the ablation switches.

The terms and why they are there:
- reconstruction (MSE): the map must keep enough about the sound for the decoder to rebuild the note;
- KL to N(0, I): keeps the posterior smooth so that points *between* instruments decode to something sensible;
- spatial regularizer: penalizes mu outside a disk of radius r, so the map fills the pad and does not drift away;
- neighbour loss: attracts notes of the same instrument (pitch invariance of the point; plain distance, see below) and repels different
  instruments closer than a margin M (so instruments spread out instead of collapsing onto each other);
- pitch classifier on the INPUT embedding: it reads ``x``, never z, so its gradient does not touch the encoder that
  produces z. The paper trains it as part of the semi-supervised objective ("the pitch classifier is trained on the
  input embedding independently of the timbre latent vector"): pitch is supervised on the side, while the timbre
  point gets only timbre supervision. What it gives us in practice is a cheap pitch reader of embeddings (used to
  check generated embeddings for pitch without decoding audio); it does not shape the map.
- instrument classifier on z: separable instruments on the map (fine structure);
- family classifier on z: instruments of one family near each other (coarse structure).
Curriculum (gamma = epoch / N, fractional epochs): family weight (1-gamma)^a_fam (coarse clusters first, fading out),
instrument weight gamma^a_inst and neighbour weight gamma^a_nei (fine structure later).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synth.model.vae import VAEConfig


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (standardized embedding units)."""
    return F.mse_loss(recon, target)


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), summed over latent dims, mean over the batch; 0 when mu=0, logvar=0."""
    return (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(dim=1)).mean()


def spatial_reg_loss(mu: torch.Tensor, radius: float = 1.0) -> torch.Tensor:
    """mean(relu(|mu| - r)^2): zero inside the disk of radius r, quadratic outside."""
    return F.relu(mu.norm(dim=1) - radius).square().mean()


def _pair_distances2(mu: torch.Tensor) -> torch.Tensor:
    return (mu[:, None, :] - mu[None, :, :]).square().sum(-1)


def _repel(d2: torch.Tensor, margin: float) -> torch.Tensor:
    return F.relu(margin - (d2 + 1e-12).sqrt()).square().mean()


def neighbour_loss(
    mu: torch.Tensor,
    instrument: torch.Tensor,
    margin: float,
    attract_power: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(attract, repel) over all pairs in the batch.

    attract: mean of d^p between notes of the same instrument (pairs i != j); 0 with no such pair. p = 1 (plain
      distance) by default: its pull does not fade as notes get close, which the V_pitch/V_inst target (>= 1e3,
      an instrument's notes within ~0.01 of each other) needs; p = 2 (squared) pulls ever more weakly near zero.
    repel: mean of relu(M - d)^2 over pairs of different instruments (a hinge: pairs farther than M cost nothing).
    """
    n = mu.shape[0]
    d2 = _pair_distances2(mu)
    same = instrument[:, None] == instrument[None, :]
    eye = torch.eye(n, dtype=torch.bool, device=mu.device)
    pos = same & ~eye
    zero = mu.sum() * 0.0
    eps = 1e-12  # keeps the gradient of the distance finite at d = 0; subtracted so that d = 0 costs exactly 0
    attract = ((d2[pos] + eps).pow(attract_power / 2) - eps ** (attract_power / 2)).mean() if pos.any() else zero
    neg = ~same
    repel = _repel(d2[neg], margin) if neg.any() else zero
    return attract, repel


def pitch_classifier_loss(logits: torch.Tensor, pitch_index: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the pitch classifier that reads the input embedding (not z)."""
    return F.cross_entropy(logits, pitch_index)


def instrument_loss(logits: torch.Tensor, instrument: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the instrument classifier on z (index -1 = unknown instrument, ignored)."""
    if (instrument >= 0).sum() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, instrument, ignore_index=-1)


def family_loss(logits: torch.Tensor, family: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the family classifier on z (index -1 = no single family, ignored)."""
    if (family >= 0).sum() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, family, ignore_index=-1)


def curriculum_weights(cfg: VAEConfig, gamma: float) -> dict[str, float]:
    """Weights of every term at curriculum position gamma in [0, 1], ablation switches applied."""
    g = min(max(float(gamma), 0.0), 1.0)
    return {
        "rec": cfg.w_rec,
        "kl": 0.0 if cfg.no_kl else cfg.w_kl,
        "reg": 0.0 if cfg.no_reg else cfg.w_reg,
        "nei": 0.0 if cfg.no_nei else cfg.w_nei * g**cfg.a_nei,
        "pitch": cfg.w_pitch,
        "inst": cfg.w_inst * g**cfg.a_inst,
        "fam": 0.0 if cfg.no_fam else cfg.w_fam * (1.0 - g) ** cfg.a_fam,
    }


def vae_loss(
    cfg: VAEConfig,
    out: dict[str, torch.Tensor],
    target: torch.Tensor,
    pitch_index: torch.Tensor,
    instrument: torch.Tensor,
    family: torch.Tensor,
    gamma: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and the value of every term (unweighted, for the progress bar and logs).

    ``instrument`` is the classifier's class (-1 ignored) and says which notes are one instrument for the
    neighbour loss."""
    w = curriculum_weights(cfg, gamma)
    attract, repel = neighbour_loss(out["mu"], instrument, cfg.margin, cfg.attract_power)
    terms = {
        "rec": reconstruction_loss(out["recon"], target),
        "kl": kl_loss(out["mu"], out["logvar"]),
        "reg": spatial_reg_loss(out["mu"], cfg.radius),
        "nei": attract + cfg.w_rep * repel,
        "pitch": pitch_classifier_loss(out["pitch_logits"], pitch_index),
        "inst": instrument_loss(out["inst_logits"], instrument),
        "fam": family_loss(out["fam_logits"], family),
    }
    total = sum(w[k] * v for k, v in terms.items())
    logs = {k: float(v.detach()) for k, v in terms.items()}
    logs["att"] = float(attract.detach())
    logs["rep"] = float(repel.detach())
    logs["total"] = float(total.detach())
    return total, logs
