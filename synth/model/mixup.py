"""Instrument mixup: pseudo-instruments blended pitch by pitch from two training instruments.

Why: fitting the 312 training instruments better raises the *training* V_pitch/V_inst (84 -> 155 with 4x more
steps) but not the held-out one (94 both times): the encoder memorizes where each training instrument goes instead
of learning what stays the same across an instrument's pitches. A pseudo-instrument ``lam * A(p) + (1-lam) * B(p)``
(the same ``lam`` at every pitch ``p``) has the pitch behaviour of both parents, key-zone changes included, and is
new every batch, so the neighbour loss can only pull its notes together through an encoder that ignores pitch-wise
change in general. Mixing is linear, so it commutes with the time pooling of the prepared input. Measured on the
SoundFont set (model card, session 4): held-out ratio 81 with ``mix_groups=1.0`` against 94 without: the hope did
not hold, and the option is off by default.

Pseudo-instruments take part in reconstruction, KL, the regularizer, the neighbour loss (each its own group) and the
pitch classifier; the instrument classifier ignores them (index -1), the family classifier too unless both parents
share a family.

Velocity layers (issue 18): a pseudo-instrument blends two notes at the same pitch AND the same velocity, so the
table holds the notes at one reference velocity (100, the core layer every instrument has at its core pitches) and
pseudo-instrument notes carry that velocity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class MixedGroups:
    """A batch's pseudo-instrument notes: ``x`` ``[M, D, T']``, per note ``pitch`` (MIDI), ``family`` (-1 = mixed
    families) and ``group`` (0..n_groups-1, one per pseudo-instrument)."""

    x: torch.Tensor
    pitch: torch.Tensor
    family: torch.Tensor
    group: torch.Tensor


def note_table(instrument: torch.Tensor, pitch: torch.Tensor, num_instruments: int, pitch_min: int,
               num_pitches: int, velocity: torch.Tensor | None = None, ref_velocity: int = 100) -> torch.Tensor:
    """``[num_instruments, num_pitches]`` index of each (instrument, pitch) note in the set, -1 where missing.

    Notes outside the pitch range or of no training instrument (index -1) are left out; with ``velocity`` given,
    so are notes at another velocity than ``ref_velocity`` (one note per cell; without it every note counts and
    the last of a cell wins)."""
    table = torch.full((num_instruments, num_pitches), -1, dtype=torch.long)
    col = pitch.long() - pitch_min
    keep = (instrument >= 0) & (col >= 0) & (col < num_pitches)
    if velocity is not None:
        keep &= velocity.long() == int(ref_velocity)
    rows = torch.nonzero(keep).squeeze(1)
    table[instrument[rows], col[rows]] = rows
    return table


def mixed_groups(
    x: torch.Tensor,
    family: torch.Tensor,
    table: torch.Tensor,
    pitch_min: int,
    n_groups: int,
    group_size: int,
    rng: np.random.Generator,
    lam_range: tuple[float, float] = (0.25, 0.75),
) -> MixedGroups:
    """``n_groups`` pseudo-instruments of up to ``group_size`` notes each, parents and pitches drawn from ``rng``.

    Each pseudo-instrument: two distinct instruments A, B with at least two pitches in common; ``lam`` uniform in
    ``lam_range``; notes at up to ``group_size`` of their common pitches. Fewer groups come back only when no two
    instruments share two pitches."""
    have = (table >= 0).numpy()
    n_inst = have.shape[0]
    xs, pitches, fams, groups = [], [], [], []
    made = 0
    for _ in range(n_groups * 20):  # bounded retries: parents without common pitches are redrawn
        if made == n_groups or n_inst < 2:
            break
        a, b = rng.choice(n_inst, size=2, replace=False)
        common = np.flatnonzero(have[a] & have[b])
        if len(common) < 2:
            continue
        cols = rng.choice(common, size=min(group_size, len(common)), replace=False)
        lam = float(rng.uniform(*lam_range))
        ia, ib = table[a, cols], table[b, cols]
        xs.append(lam * x[ia].float() + (1.0 - lam) * x[ib].float())
        pitches.append(torch.from_numpy(cols + pitch_min).long())
        fa, fb = family[ia], family[ib]
        fams.append(torch.where(fa == fb, fa, torch.full_like(fa, -1)))
        groups.append(torch.full((len(cols),), made, dtype=torch.long))
        made += 1
    if not xs:
        empty = torch.zeros(0, dtype=torch.long)
        return MixedGroups(x.new_zeros((0, *x.shape[1:])).float(), empty, empty, empty)
    return MixedGroups(torch.cat(xs), torch.cat(pitches), torch.cat(fams), torch.cat(groups))
