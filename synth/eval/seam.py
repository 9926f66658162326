"""Seams of the flow sampler's long notes (issue "Sound, part 2": continuation mode).

A held note grows past one window by ``FlowNet.continue_``: the last ``K`` frames before the join are given as clean
context and the sampler writes what follows. Here the join is placed inside the held part of a generated note
(frame ``join``), the continuation replaces everything after it, and the joined note is decoded as the instrument
plays it (pitch channel locked). A seam is audible as a burst of spectral change or a level step at the join, so
both are measured at the join and compared with

- ``control``: the same measure at the same time in the note that was not cut (paired: same point, pitch, noise);
- ``inside``: the same measure at every other held position of the joined note (outside the attack, the join and
  the release), as a percentile rank: a seam that sits at the 50th percentile is as smooth as the note itself.

Spectral flux: half-wave rectified frame-to-frame rise of the log-magnitude spectrum (dB, mean over bins), STFT
1024/256 at the codec's rate, max over +-3 STFT hops around the position (the decoder's receptive field smears a
frame-exact discontinuity over a few hops). Level step: |dB(50 ms after) - dB(50 ms before)|.
"""

from __future__ import annotations

import numpy as np
import torch

FLUX_FFT = 1024
FLUX_HOP = 256
FLUX_HALF_WINDOW = 3  # STFT hops each side of a position
LEVEL_WINDOW_S = 0.05
ATTACK_SKIP_S = 0.3  # the attack's own flux is not a seam reference
GUARD_S = 0.1  # positions this close to the join are not "inside"


def long_frames(synth, z: torch.Tensor, p: torch.Tensor, v: torch.Tensor, join: int, context: int,
                guidance: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(one-window frames ``[B, T, D]``, joined frames ``[B, join + T - context, D]``): the note cut at ``join`` and
    continued from its ``context`` frames before the join (segment 1 of the point's noise)."""
    flow = synth.flow
    g = synth.guidance if guidance is None else float(guidance)
    with torch.inference_mode():
        first = flow.generate(z, p, v, steps=synth.steps, guidance=g).float()
        nxt = flow.continue_(first[:, :join], z, p, v, context=context, steps=synth.steps, guidance=g).float()
    return first, torch.cat([first[:, :join], nxt], dim=1)


def play(synth, frames: torch.Tensor, p: torch.Tensor) -> np.ndarray:
    """Waves ``[B, S]`` of standardized frames of any length, pitch-locked and peak-safe as the instrument plays."""
    with torch.inference_mode():
        locked = synth.lock_pitch(frames.to(synth.device), p.to(synth.device))
        return synth.safe_audio(synth.decode_standardized(locked))


def flux_curve(wave: np.ndarray) -> np.ndarray:
    """Rectified log-spectral flux per STFT hop (dB): index i is the change from hop i-1 to hop i (index 0 is 0)."""
    w = torch.from_numpy(np.ascontiguousarray(wave, np.float32))
    spec = torch.stft(w, FLUX_FFT, FLUX_HOP, window=torch.hann_window(FLUX_FFT), return_complex=True).abs()
    logmag = 20 * torch.log10(spec + 1e-5)  # [bins, hops]
    rise = torch.clamp(logmag[:, 1:] - logmag[:, :-1], min=0).mean(0)
    return np.concatenate([[0.0], rise.numpy()])


def windowed_max(curve: np.ndarray, half: int = FLUX_HALF_WINDOW) -> np.ndarray:
    padded = np.pad(curve, half, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)


def level_step_db(wave: np.ndarray, sample: int, sample_rate: int) -> float:
    n = int(LEVEL_WINDOW_S * sample_rate)
    before, after = wave[max(sample - n, 0) : sample], wave[sample : sample + n]
    if len(before) == 0 or len(after) == 0:
        return float("nan")
    db = lambda x: 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)  # noqa: E731
    return abs(db(after) - db(before))


def note_seam(joined: np.ndarray, control: np.ndarray, join_sample: int, release_sample: int,
              sample_rate: int, attack_skip_s: float = ATTACK_SKIP_S, guard_s: float = GUARD_S) -> dict:
    """The seam measures of one note: flux and level step at the join, in the uncut control note at the same time,
    and the join's percentile rank among the joined note's held positions."""
    flux = windowed_max(flux_curve(joined))
    flux_ctrl = windowed_max(flux_curve(control))
    hop_at = lambda s: min(int(round(s / FLUX_HOP)), len(flux) - 1)  # noqa: E731
    j = hop_at(join_sample)
    lo, hi = hop_at(attack_skip_s * sample_rate), hop_at(release_sample)
    guard = int(round(guard_s * sample_rate / FLUX_HOP))
    inside = np.array([flux[i] for i in range(lo, hi) if abs(i - j) > guard])
    steps_inside = np.array([level_step_db(joined, i * FLUX_HOP, sample_rate) for i in range(lo, hi, 4)
                             if abs(i - j) > guard])
    step = level_step_db(joined, join_sample, sample_rate)
    return {
        "flux_join_db": float(flux[j]),
        "flux_control_db": float(flux_ctrl[min(j, len(flux_ctrl) - 1)]),
        "flux_inside_median_db": float(np.median(inside)) if inside.size else float("nan"),
        "flux_rank": float(np.mean(inside <= flux[j])) if inside.size else float("nan"),
        "level_step_db": step,
        "level_step_control_db": level_step_db(control, join_sample, sample_rate),
        "level_step_rank": float(np.mean(steps_inside <= step)) if steps_inside.size else float("nan"),
    }


def summarize(per_note: list[dict]) -> dict:
    """Medians over notes, the paired share of joins with more flux than their control, and the share of joins
    above the 95th percentile of their own note (an audible-seam proxy; ~5% is what chance gives)."""
    def col(k: str) -> np.ndarray:
        return np.array([r[k] for r in per_note], np.float64)

    def med(k: str) -> float:
        x = col(k)
        x = x[np.isfinite(x)]
        return round(float(np.median(x)), 3) if x.size else float("nan")

    jf, cf, rank = col("flux_join_db"), col("flux_control_db"), col("flux_rank")
    return {
        "notes": len(per_note),
        "flux_join_db_p50": med("flux_join_db"),
        "flux_control_db_p50": med("flux_control_db"),
        "flux_inside_db_p50": med("flux_inside_median_db"),
        "flux_join_over_control_p50": round(float(np.median(jf / np.maximum(cf, 1e-6))), 3),
        "share_join_flux_above_control": round(float(np.mean(jf > cf)), 3),
        "flux_rank_p50": med("flux_rank"),
        "share_join_above_p95_of_note": round(float(np.mean(rank > 0.95)), 3),
        "level_step_db_p50": med("level_step_db"),
        "level_step_control_db_p50": med("level_step_control_db"),
        "level_step_rank_p50": med("level_step_rank"),
    }


def measure(synth, z: torch.Tensor, p: torch.Tensor, v: torch.Tensor, join_s: float = 2.0,
            context: int | None = None, note_off_s: float = 3.0, chunk: int = 16) -> dict:
    """The seam report of notes at points ``z`` ``[N, 2]``, pitches ``p`` and velocities ``v`` ``[N]``: each note
    is cut at ``join_s`` (inside its held part, before ``note_off_s``) and continued for one segment."""
    if synth.flow is None:
        raise ValueError("the bundle has no flow model: continuations are a flow-sampler feature")
    cfg = synth.flow.cfg
    k = cfg.context_frames if context is None else int(context)
    fps = cfg.num_frames / (synth.num_samples / synth.sample_rate)
    join = int(round(join_s * fps))
    if not k <= join < int(note_off_s * fps):
        raise ValueError(f"join at {join_s} s must leave {k} context frames before it and lie before the note-off")
    hop = synth.num_samples // cfg.num_frames
    # short windows (tiny test models) scale the attack skip and the guard down with the join
    attack_skip, guard = min(ATTACK_SKIP_S, join_s / 4), min(GUARD_S, join_s / 8)
    rows = []
    for i in range(0, len(p), chunk):
        zb, pb, vb = z[i : i + chunk], p[i : i + chunk], v[i : i + chunk]
        first, joined = long_frames(synth, zb, pb, vb, join, k)
        w_first, w_joined = play(synth, first, pb), play(synth, joined, pb)
        for a, b in zip(w_joined, w_first):
            rows.append(note_seam(a, b, join * hop, int(note_off_s * synth.sample_rate), synth.sample_rate,
                                  attack_skip, guard))
    out = summarize(rows)
    out.update({"join_s": join_s, "context_frames": k, "continued_length_s": round((join + cfg.num_frames - k) / fps,
                                                                                   3)})
    return out
