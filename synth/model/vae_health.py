"""Does a trained VAE's decoder follow velocity? A check that ``synth train vae`` runs on its own training notes.

Why: in session 15 a VAE trained with the usual options (seed 0 on the v7 cache) came out velocity-blind: at the
instrument points its decoder wrote the same level for every velocity layer (-28.6 / -28.5 / -28.4 / -28.4 dBFS),
while the same command with another seed followed the real layers (-41.3 ... -15.8). The loss looked alike in both
runs; only a decode-and-measure evaluation (``synth eval velocity``, minutes of codec decoding) showed it. This check
needs no codec: it compares, in the embedding the VAE reconstructs, the change from the softest to the hardest layer
of one instrument at one pitch (a *cell*) with the real notes' change, decoded at the instrument's point as the
bundle plays it.

Per cell: ``ratio`` = |decoded(hi) - decoded(lo)| / |real(hi) - real(lo)| over the whole standardized frame grid, and
``cosine`` of the two changes. The cosine is what tells: measured on 300 training cells of each run (2026-12-02),
the shipped VAE (v6 cache) 0.54, the v7 cache's seed-1 VAE 0.57 and its enc_skip_dims=2 VAE 0.55, the velocity-blind
seed-0 VAE 0.17. The ratio alone does not (0.64 for the blind one against 0.99-1.04: its decoder does change with
velocity, in directions the real notes do not).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from synth.model.data import NoteSet
from synth.model.points import centroids, encode_notes
from synth.model.vae import TimbreVAE

BLIND_COSINE = 0.35  # under this median cosine the decoder is called velocity-blind (measured: module doc)


def soft_hard_pairs(notes: NoteSet, max_cells: int, seed: int = 0) -> list[tuple[int, int]]:
    """(index of the softest note, index of the hardest) for each (instrument, pitch) with two or more velocities,
    at most ``max_cells`` of them drawn with ``seed`` (all when there are fewer)."""
    by_cell: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (name, pitch) in enumerate(zip(notes.instrument_names, notes.pitch.tolist())):
        by_cell[(name, pitch)].append(i)
    pairs = []
    for key in sorted(by_cell):
        idx = sorted(by_cell[key], key=lambda i: int(notes.velocity[i]))
        if int(notes.velocity[idx[0]]) < int(notes.velocity[idx[-1]]):
            pairs.append((idx[0], idx[-1]))
    if len(pairs) > max_cells:
        pick = np.random.default_rng(seed).choice(len(pairs), max_cells, replace=False)
        pairs = [pairs[i] for i in sorted(pick)]
    return pairs


@torch.no_grad()
def velocity_response(vae: TimbreVAE, notes: NoteSet, max_cells: int = 300, chunk: int = 256) -> dict:
    """The decoder's velocity response at the instrument points against the real notes' (``notes`` in the VAE's
    prepared layout, e.g. its training set). ``blind`` is true when the median cosine is under ``BLIND_COSINE``."""
    if not vae.cfg.velocity_cond:
        return {"cells": 0, "reason": "the VAE has no velocity input (velocity_cond false)"}
    pairs = soft_hard_pairs(notes, max_cells)
    if not pairs:
        return {"cells": 0, "reason": "no instrument has one pitch at two velocities in these notes"}
    vae.eval()
    mu, _ = encode_notes(vae, notes)
    names, points, _ = centroids(mu, notes.instrument_names, notes.family.numpy())
    point_of = {n: p for n, p in zip(names, points)}
    lo, hi = (np.array(side) for side in zip(*pairs))
    ratios, cosines = [], []
    for s in range(0, len(pairs), chunk):
        lo_c, hi_c = lo[s : s + chunk], hi[s : s + chunk]
        z = torch.from_numpy(np.stack([point_of[notes.instrument_names[i]] for i in lo_c])).float()
        pitch = notes.pitch[lo_c]
        dec = vae.decode_coarse(z, pitch, notes.velocity[hi_c]) - vae.decode_coarse(z, pitch, notes.velocity[lo_c])
        real = notes.x[hi_c].float() - notes.x[lo_c].float()
        dec, real = dec.flatten(1), real.flatten(1)
        ratios.append((dec.norm(dim=1) / real.norm(dim=1).clamp_min(1e-6)).numpy())
        cosines.append(torch.nn.functional.cosine_similarity(dec, real, dim=1).numpy())
    ratio, cosine = np.concatenate(ratios), np.concatenate(cosines)
    median_cosine = float(np.median(cosine))
    return {
        "cells": len(pairs),
        "ratio_p50": round(float(np.median(ratio)), 4),
        "ratio_p10": round(float(np.percentile(ratio, 10)), 4),
        "cosine_p50": round(median_cosine, 4),
        "share_cosine_positive": round(float(np.mean(cosine > 0)), 4),
        "blind": median_cosine < BLIND_COSINE,
    }
