"""Instrument points on the timbre map: the VAE's mu for a set of notes and the centroid of mu per instrument.

Shared by ``synth bundle build`` (the points a bundle places on the pad) and the evaluations in ``synth.eval``
(latent metrics, the generator eval's fallback points), so it lives below both.
"""

from __future__ import annotations

import numpy as np
import torch

from synth.model.data import NoteSet
from synth.model.vae import TimbreVAE


@torch.no_grad()
def encode_notes(vae: TimbreVAE, notes: NoteSet, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(mu [N, 2], pitch-head predictions [N] in MIDI) for notes in the VAE's prepared layout."""
    vae.eval()
    mus, preds = [], []
    for i in range(0, len(notes), chunk):
        xp = notes.x[i : i + chunk].float()
        mus.append(vae.encode_prepped(xp)[0])
        preds.append(vae.pitch_head(xp).argmax(1) + vae.cfg.pitch_min)
    return torch.cat(mus).numpy(), torch.cat(preds).numpy()


def centroids(mu: np.ndarray, instruments: list[str], family: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(instrument names, sorted; the mean mu of each [n, 2]; the family index of each [n])."""
    names = sorted(set(instruments))
    arr = np.asarray(instruments)
    cents = np.stack([mu[arr == n].mean(axis=0) for n in names]) if names else np.zeros((0, 2))
    fams = np.array([family[arr == n][0] for n in names], dtype=np.int64)
    return names, cents, fams
