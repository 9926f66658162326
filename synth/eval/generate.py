"""Helpers of ``synth eval generate`` (``generate_cli.py``): the notes of every condition and their measures.

Conditions, each note at its held-out instrument's point, its own pitch and its own velocity:
``real`` (the dataset audio), ``codec`` (round trip of the cached real codes: the ceiling), ``flow`` (the flow
sampler at its default steps / guidance; ``flow_g<g>`` for each extra guidance of the sweep), ``generator`` (the MSE
generator), ``vae`` (the VAE decoder), ``nearest5`` (mean of the standardized codes of the 5 nearest training
instruments at the same pitch, decoded). ``<model>`` is what the instrument plays (the codec's pitch channel written
from the asked pitch, ``Synthesizer.lock_pitch``); ``<model>_unlocked`` is the network's own pitch channel.

Definitions (one line each, for the model card); sound.py's module docstring defines the release / noise / attack /
MFCC-timbre measures reused here:

- pitch accuracy: share of notes whose median f0 over 0.25-1.25 s is within 50 cents of the asked pitch (unvoiced =
  wrong), by torchcrepe "tiny" (``audio_metrics``) and by pYIN (``sound.pitch_accuracy_pyin``). Crepe's bins span
  ~31.7-1976 Hz (MIDI 24-95 in tune): outside, only pYIN counts (``pitch_21_108``'s rule; crepe's accuracies are over
  MIDI 24-95 only, and None in the octaves outside).
- MR-STFT / log-mel: ``audio_metrics`` distances to the real note, over the batch (as before) and as the mean of the
  per-note distances (which the paired shares use).
- MFCC timbre distance: Euclidean distance between a note's mean MFCC 1-20 over its held frames and the real note's
  (``sound.spectral_measures``; c0 dropped, so level does not count).
- paired share "a closer than b": share of notes (where both distances are defined) whose ``a`` note is closer to
  the real note than its ``b`` note, per distance (MR-STFT, log-mel, MFCC). Issue 15's target: >= 0.6.
- distribution distance: Frechet distance between the Gaussians fitted to per-note embeddings of the produced and
  the real notes; embedding = mean and std over all STFT frames of the note (2048 / 512 hop, 128 mels, log-mel
  floored 80 dB under the note's peak) of MFCC 1-20: 40 dims, each z-scored with the real notes' mean and std.
  ``real_split_half``: the same distance between two random halves of the real notes (the sampling noise at this N).
- timbre spread at C4: ``sound.timbre_spread`` (mean pairwise distance of per-instrument MFCC vectors, and the trace
  of their covariance) of MIDI 60 velocity-100 notes at the points of up to 40 instruments (every held-out
  instrument with such a note, then a seeded sample of training instruments), divided by the spread of the same
  instruments' real notes (and of their codec round trips).
- level of a note: RMS of 0.25 s .. note-off in dBFS (``sound.segment_dbfs``).
- brightness: power-weighted spectral centroid over the held frames (``sound``'s held-frame rule) divided by the f0 of
  the asked pitch, in octaves (log2). Brightness slope: least squares of brightness on velocity / 127 with the
  pitch ((MIDI - 60) / 12) as a second regressor (dropped when the notes have one pitch), per family: octaves of
  centroid from velocity 0 to 127; ratio = model slope / real slope (issue 18's target: within 30%).
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

CREPE_MIN_MIDI, CREPE_MAX_MIDI = 24, 95  # crepe's bins span ~31.7-1976 Hz: MIDI 23 (30.9 Hz) and 96 (2093 Hz) fall out


def crepe_tracks(pitches) -> np.ndarray:
    """Bool per note: crepe can track it (MIDI 24-95)."""
    p = np.asarray(pitches)
    return (p >= CREPE_MIN_MIDI) & (p <= CREPE_MAX_MIDI)
PAIRS = (("flow", "generator"), ("flow", "nearest5"), ("flow", "vae"), ("generator", "vae"), ("generator", "nearest5"))
MODELS = ("flow", "generator", "vae")


# ---- notes ------------------------------------------------------------------------------------------------------


def models_of(synth) -> list[str]:
    """The networks the bundle can play: the flow sampler (when it has one), the MSE generator, the VAE decoder."""
    return (["flow"] if synth.flow is not None else []) + ["generator", "vae"]


def decode(synth, frames, chunk: int = 25):
    """Waves ``[N, S]`` (torch, CPU, finite and peak-safe as the instrument plays them) of standardized frames."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(frames), chunk):
            f = frames[i : i + chunk].to(synth.device)
            out.append(torch.from_numpy(synth.safe_audio(synth.decode_standardized(f))))
    return torch.cat(out) if out else torch.zeros(0, synth.num_samples)


def model_frames(synth, kind: str, z, p, v, guidance: float | None = None, chunk: int = 25):
    """Standardized frames ``[N, T, D]`` (CPU) of one network: ``flow`` (default steps, ``guidance`` or the
    default), ``generator`` or ``vae``, for points ``z`` ``[N, 2]``, pitches ``p`` and velocities ``v`` ``[N]``."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(p), chunk):
            zb, pb, vb = (t[i : i + chunk].to(synth.device) for t in (z, p, v))
            if kind == "flow":
                g = synth.guidance if guidance is None else float(guidance)
                f = synth.flow.generate(zb, pb, vb, steps=synth.steps, guidance=g)
            elif kind == "generator":
                f = synth.generator_frames(zb, pb, vb)
            elif kind == "vae":
                f = synth.vae.decode(zb, pb, vb)
            else:
                raise ValueError(kind)
            out.append(f.float().cpu())
    return torch.cat(out)


def played(synth, frames, p):
    """Waves with the pitch channel locked to ``p`` (what the instrument plays)."""
    import torch

    with torch.inference_mode():
        return decode(synth, synth.lock_pitch(frames.to(synth.device), p.to(synth.device)).cpu())


def played_and_unlocked(synth, frames, p):
    """(waves with the pitch channel locked to ``p``, waves as the network wrote the channel)."""
    return played(synth, frames, p), decode(synth, frames)


def train_index(train_cache) -> dict:
    """(instrument, pitch) -> [(velocity, row)] of the training cache."""
    out: dict = {}
    for i, m in enumerate(train_cache.meta):
        out.setdefault((m["instrument_str"], int(m["pitch"])), []).append((int(m.get("velocity", 100)), i))
    return out


def nearest5_frames(meta, z, train_points: dict, train_cache, t_index: dict, num_frames: int, k: int = 5):
    """Mean standardized codes of the ``k`` training instruments nearest each note's point (the note's own
    instrument excluded) that have a note at its pitch, each at the velocity nearest the note's; returns
    ``(frames [N, T, D], share of picks at the note's exact velocity)``."""
    import torch

    tnames = sorted(train_points)
    tc = np.stack([train_points[n] for n in tnames])
    mean, std = np.asarray(train_cache.mean, np.float32), np.asarray(train_cache.std, np.float32)
    out, exact, picked = [], 0, 0
    for m, zz in zip(meta, np.asarray(z)):
        order = np.argsort(((tc - zz) ** 2).sum(1))
        pitch, vel = int(m["pitch"]), int(m.get("velocity", 100))
        picks = []
        for j in order:
            if tnames[j] == m["instrument_str"]:
                continue
            rows = t_index.get((tnames[j], pitch))
            if rows:
                dv, r = min((abs(rv - vel), r) for rv, r in rows)
                picks.append(r)
                exact += dv == 0
            if len(picks) == k:
                break
        picked += len(picks)
        if not picks:  # no training instrument has this pitch: silence stands in (counted in the distances)
            out.append(torch.zeros(num_frames, mean.shape[0]))
            continue
        e = (np.asarray(train_cache.embeddings[sorted(picks)], np.float32) - mean) / std
        out.append(torch.from_numpy(e[:, :num_frames].mean(0)))
    return torch.stack(out), (exact / picked if picked else float("nan"))


def frame_mse(synth, frames, real) -> float:
    """MSE of standardized codec frames to the real note's, on the learned dims (before the pitch channel)."""
    d = synth.pitch_dim if synth.pitch_dim is not None else frames.shape[-1]
    t = min(frames.shape[1], real.shape[1])
    return float(((frames[:, :t, :d].float() - real[:, :t, :d].float()) ** 2).mean())


def real_audio(data_root, split, note_strs, sample_rate, num_samples):
    """Real waves for the given note_strs (None where the audio is not there)."""
    from synth.codec.notes import load_note_audio, read_notes

    try:
        by_name = {n.note_str: n for n in read_notes(data_root, split)}
    except Exception as exc:
        print(f"real audio unavailable for {split}: {exc}", file=sys.stderr)
        return [None] * len(note_strs)
    return [None if by_name.get(s) is None else load_note_audio(by_name[s], sample_rate, num_samples)
            for s in note_strs]


# ---- per-note measures ------------------------------------------------------------------------------------------


def pitch_all(waves: dict, sample_rate: int, pitches) -> dict:
    """Per condition and note: crepe f0 and correctness, pYIN f0 and correctness. All conditions go through each
    tracker as ONE batch (pYIN runs once per distinct pitch, not once per pitch and condition), cropped to the
    trackers' window first (both read 0.25-1.25 s only)."""
    import torch

    from synth.eval.audio_metrics import PitchConfig, median_f0, pitch_correct
    from synth.eval.sound import SoundConfig, median_f0_pyin

    pitches = np.asarray(pitches)
    names = list(waves)
    if not names:
        return {}
    end = int(math.ceil(max(PitchConfig().end_s, SoundConfig().pitch_end_s) * sample_rate)) + 1
    batch = torch.cat([torch.as_tensor(waves[k])[:, :end].float() for k in names])
    allp = np.tile(pitches, len(names))
    f0c = median_f0(batch, sample_rate)
    f0p = median_f0_pyin(batch.numpy(), sample_rate, allp)
    n = len(pitches)
    out = {}
    for i, k in enumerate(names):
        c, p = f0c[i * n : (i + 1) * n], f0p[i * n : (i + 1) * n]
        out[k] = {"crepe_f0": c, "crepe": pitch_correct(c, pitches), "pyin_f0": p, "pyin": pitch_correct(p, pitches)}
    return out


_MRSTFT = None


def spectral_distances(waves, real, sample_rate: int) -> dict:
    """MR-STFT (auraloss, its default resolutions, as ``audio_metrics.mrstft_distance``) and log-mel L1
    (``audio_metrics.log_mel``) distances to the paired real notes: per note (arrays) and over the batch (floats,
    what ``mrstft_distance`` / ``log_mel_l1`` return for the whole batch), from ONE pass over the notes: the batch
    spectral convergence is ``sqrt(sum |Y - X|^2) / sqrt(sum |Y|^2)`` over all notes and the log terms are means
    over equal-sized notes, so the per-note sums give it exactly, without the whole batch's spectrograms in memory
    (3x faster on 4 s notes)."""
    import auraloss
    import torch

    from synth.eval.audio_metrics import log_mel

    global _MRSTFT
    if _MRSTFT is None:
        _MRSTFT = auraloss.freq.MultiResolutionSTFTLoss()
    waves, real = torch.as_tensor(waves).float(), torch.as_tensor(real).float()
    n, s = len(real), min(waves.shape[-1], real.shape[-1])
    res = _MRSTFT.stft_losses
    num, den, logs, cnt = (np.zeros((n, len(res))) for _ in range(4))
    lm = np.zeros(n)
    with torch.no_grad():
        for i in range(n):
            x, y = waves[i : i + 1, :s], real[i : i + 1, :s]
            for j, f in enumerate(res):
                f.window = f.window.to(x.device)
                xm, ym = f.stft(x)[0], f.stft(y)[0]
                num[i, j] = float((ym - xm).square().sum())
                den[i, j] = float(ym.square().sum())
                logs[i, j] = float((torch.log(xm) - torch.log(ym)).abs().sum())
                cnt[i, j] = xm.numel()
            lm[i] = float((log_mel(x, sample_rate) - log_mel(y, sample_rate)).abs().mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        per_note = (np.sqrt(num) / np.sqrt(den) + logs / cnt).mean(1)
        batch = float((np.sqrt(num.sum(0)) / np.sqrt(den.sum(0)) + logs.sum(0) / cnt.sum(0)).mean())
    return {"mrstft": per_note, "logmel": lm, "mrstft_batch": batch, "logmel_batch": float(lm.mean())}


def held_brightness_level(waves, sample_rate: int, pitches, note_off_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per note: (log2 of the held frames' power-weighted spectral centroid over the asked pitch's f0, level of
    0.25 s .. note-off in dBFS); NaN where a note has no held frame."""
    from synth.eval.sound import SoundConfig, _held_spectra, as_numpy, segment_dbfs

    cfg = SoundConfig(note_off_s=note_off_s)
    waves = as_numpy(waves)
    freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / sample_rate)
    f0 = 440.0 * 2.0 ** ((np.asarray(pitches, np.float64) - 69.0) / 12.0)
    out = np.full(len(waves), np.nan)
    for i0 in range(0, len(waves), cfg.chunk):
        power, keep = _held_spectra(waves[i0 : i0 + cfg.chunk], sample_rate, cfg)
        for j in range(len(power)):
            if keep.size and keep[j].any():
                p = power[j][:, keep[j]].sum(1)
                if p.sum() > 0:
                    out[i0 + j] = math.log2(float((freqs * p).sum() / p.sum()) / f0[i0 + j])
    return out, segment_dbfs(waves, sample_rate, cfg.held_start_s, note_off_s)


def mfcc_stats(waves, sample_rate: int, n_mfcc: int = 20, n_fft: int = 2048, hop: int = 512, n_mels: int = 128,
               top_db: float = 80.0) -> np.ndarray:
    """The distribution embedding ``[N, 2 * n_mfcc]``: mean and std over all frames of MFCC 1..n_mfcc (log-mel
    floored ``top_db`` under the note's peak; a silent note gets the floor everywhere)."""
    import librosa
    import torch

    from synth.eval.sound import as_numpy

    waves = as_numpy(waves)
    mel_fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float64)
    out = np.zeros((len(waves), 2 * n_mfcc))
    for i0 in range(0, len(waves), 50):
        x = torch.from_numpy(np.ascontiguousarray(waves[i0 : i0 + 50]))
        spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
        mel = np.matmul(mel_fb, spec.abs().square().double().numpy())
        for j in range(len(mel)):
            mel_db = librosa.power_to_db(mel[j], ref=max(float(mel[j].max()), 1e-20), amin=1e-20, top_db=top_db)
            m = librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc + 1)[1:]
            out[i0 + j] = np.concatenate([m.mean(1), m.std(1)])
    return out


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to the rows of ``a`` and ``b`` (sample covariances)."""
    from scipy import linalg

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # with fewer notes than dims the covariances are singular: expected
        warnings.simplefilter("ignore")
        covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
        if not np.isfinite(covmean).all():
            eps = 1e-6 * np.eye(len(s1))
            covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def distribution(embs: dict, seed: int = 0) -> dict:
    """Frechet distances of every condition's embeddings to the real notes' (z-scored with the real notes' stats)."""
    real = embs["real"]
    mu, sd = real.mean(0), real.std(0) + 1e-8
    z = {k: (v - mu) / sd for k, v in embs.items()}
    perm = np.random.default_rng(seed).permutation(len(real))
    h = len(real) // 2
    return {"embedding": "mfcc1-20 mean+std over frames (2048/512 STFT, 128 mels, log-mel floored 80 dB under the "
                         "note's peak), 40 dims z-scored with the real notes' mean/std",
            "measure": "frechet", "notes": int(len(real)),
            "frechet_to_real": {k: _num(frechet(v, z["real"])) for k, v in z.items() if k != "real"},
            "real_split_half": _num(frechet(z["real"][perm[:h]], z["real"][perm[h:]]))}


# ---- summaries --------------------------------------------------------------------------------------------------


def _num(x, digits: int = 5):
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def _mean(x) -> float | None:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return _num(x.mean()) if len(x) else None


def _median(x) -> float | None:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return _num(np.median(x)) if len(x) else None


def closer_share(da: np.ndarray, db: np.ndarray) -> float | None:
    """Share of notes where ``da < db`` among those where both are finite."""
    both = np.isfinite(da) & np.isfinite(db)
    return _num(np.mean(da[both] < db[both])) if both.any() else None


def paired(dist: dict, pairs) -> dict:
    """``{"a_closer_than_b": {distance: share, "notes": n}}`` for the pairs whose conditions were measured."""
    out = {}
    for a, b in pairs:
        if a in dist and b in dist:
            row = {k: closer_share(dist[a][k], dist[b][k]) for k in dist[a]}
            row["notes"] = int(np.isfinite(dist[a]["mrstft"]).sum())
            out[f"{a}_closer_than_{b}"] = row
    return out


def octave_label(midi: int) -> str:
    lo = 12 * (int(midi) // 12)
    return f"{max(lo, 21)}-{min(lo + 11, 108)}"


def pitch_by_octave(pitch_res: dict, pitches) -> dict:
    """Per C-octave bucket: notes, crepe accuracy (None outside MIDI 24-95) and pYIN accuracy of every
    condition."""
    pitches = np.asarray(pitches)
    labels = np.array([octave_label(p) for p in pitches])
    out = {}
    for lab in sorted(set(labels.tolist()), key=lambda s: int(s.split("-")[0])):
        idx = labels == lab
        row = {"notes": int(idx.sum()), "tracker": "crepe+pyin"}
        if not crepe_tracks(pitches[idx]).all():
            row["tracker"] = f"pyin only (crepe tracks MIDI {CREPE_MIN_MIDI}-{CREPE_MAX_MIDI})"
            row["crepe"] = None
        else:
            row["crepe"] = {k: _num(v["crepe"][idx].mean()) for k, v in pitch_res.items()}
        row["pyin"] = {k: _num(v["pyin"][idx].mean()) for k, v in pitch_res.items()}
        out[lab] = row
    return out


def pitch_21_108(pitch_res: dict, pitches) -> dict:
    """Accuracy over the whole range: crepe for MIDI 24-95, pYIN outside; and pYIN alone; each also where the real
    note is correct (by the same rule), issue 18's target (>= 0.98 there)."""
    pitches = np.asarray(pitches)
    low = crepe_tracks(pitches)
    comb = {k: np.where(low, v["crepe"], v["pyin"]) for k, v in pitch_res.items()}
    out = {"rule": f"crepe for MIDI {CREPE_MIN_MIDI}-{CREPE_MAX_MIDI}, pYIN outside (crepe's bins span ~31.7-1976 Hz)",
           "notes": int(len(pitches)), "notes_pyin_only": int((~low).sum()),
           "accuracy": {k: _num(v.mean()) for k, v in comb.items()},
           "pyin_accuracy": {k: _num(v["pyin"].mean()) for k, v in pitch_res.items()}}
    if "real" in comb:
        ok, okp = comb["real"], pitch_res["real"]["pyin"]
        out["where_real_correct"] = {k: (_num(v[ok].mean()) if ok.any() else None) for k, v in comb.items()}
        out["pyin_where_real_correct"] = {k: (_num(v["pyin"][okp].mean()) if okp.any() else None)
                                          for k, v in pitch_res.items()}
    return out


def _slope(y, v, p) -> float | None:
    y, v, p = (np.asarray(a, np.float64) for a in (y, v, p))
    ok = np.isfinite(y)
    y, v, p = y[ok], v[ok], p[ok]
    if len(y) < 3 or len(np.unique(v)) < 2:
        return None
    cols = [np.ones_like(v), v / 127.0]
    if len(np.unique(p)) > 1 and len(y) >= 4:
        cols.append((p - 60.0) / 12.0)
    a = np.stack(cols, 1)
    coef, _, rank, _ = np.linalg.lstsq(a, y, rcond=None)
    if rank < a.shape[1]:
        coef, _, rank, _ = np.linalg.lstsq(a[:, :2], y, rcond=None)
        if rank < 2:
            return None
    return _num(coef[1], 4)


def velocity_measures(bright: dict, level: dict, velocities, pitches, families, layers) -> dict:
    """Issue 18's velocity numbers from per-note brightness and level of each condition (``real`` included)."""
    v, p, fam = np.asarray(velocities), np.asarray(pitches), np.asarray(families)
    models = [k for k in bright if k != "real"]
    by_layer = {}
    for lay in sorted(set(v.tolist())):
        idx = v == lay
        by_layer[str(lay)] = {"notes": int(idx.sum()),
                              "level_dbfs_p50": {k: _median(x[idx]) for k, x in level.items()},
                              "brightness_octaves_p50": {k: _median(x[idx]) for k, x in bright.items()},
                              "centroid_over_f0_p50": {k: (_num(2.0 ** m) if (m := _median(x[idx])) is not None
                                                           else None) for k, x in bright.items()}}
    slopes = {}
    for f in sorted(set(fam.tolist())) + ["all"]:
        idx = np.ones(len(v), bool) if f == "all" else fam == f
        row = {"notes": int(idx.sum()), "velocities": sorted(set(v[idx].tolist()))}
        row["slope_octaves"] = {k: _slope(x[idx], v[idx], p[idx]) for k, x in bright.items()}
        real = row["slope_octaves"].get("real")
        row["ratio_to_real"] = {k: (_num(row["slope_octaves"][k] / real, 3)
                                    if real not in (None, 0) and row["slope_octaves"][k] is not None else None)
                                for k in models}
        slopes[f] = row
    within = {}
    for k in models:
        r = [s["ratio_to_real"][k] for f, s in slopes.items() if f != "all" and s["ratio_to_real"][k] is not None]
        within[k] = _num(np.mean([abs(x - 1.0) <= 0.3 for x in r])) if r else None
    level_slope = {k: _slope(x, v, p) for k, x in level.items()}
    return {"bundle_velocity_layers": list(layers), "bundle_velocity_conditioned": len(layers) > 1,
            "by_layer": by_layer, "brightness_slope_by_family": slopes,
            "share_of_families_slope_within_30pct": within,
            "level_slope_db_per_127_velocity": {k: (_num(x, 3) if x is not None else None)
                                               for k, x in level_slope.items()}}


# ---- one split, the spread, the sweep, the targets -----------------------------------------------------------


def measure_split(synth, waves, mse, meta, exact, note_off, full: bool, skip_sound: bool, seed: int) -> dict:
    from synth.eval.audio_metrics import cents_off
    from synth.eval.sound import SoundConfig, sound_report, spectral_measures

    t0 = time.time()
    sr = synth.sample_rate
    pitch = np.array([int(m["pitch"]) for m in meta])
    vel = np.array([int(m.get("velocity", 100)) for m in meta])
    fams = [m.get("family", "?") for m in meta]
    insts = [m["instrument_str"] for m in meta]
    low = crepe_tracks(pitch)
    res = {"notes": int(len(meta)), "pitch_min": int(pitch.min()), "pitch_max": int(pitch.max()),
           "velocities": {str(k): int((vel == k).sum()) for k in sorted(set(vel.tolist()))},
           "instruments": len(set(insts)), "conditions": sorted(waves), "pitch_accuracy_crepe_notes": int(low.sum())}
    secs = {}
    # pitch: every condition, both trackers (crepe over the notes it can track: MIDI 24-95)
    pr = pitch_all(waves, sr, pitch)
    res["pitch_accuracy"] = {k: _num(r["crepe"][low].mean()) if low.any() else None for k, r in pr.items()}
    res["pitch_accuracy_pyin"] = {k: _num(r["pyin"].mean()) for k, r in pr.items()}
    res["median_abs_cents"] = {k: _median(np.abs(cents_off(r["crepe_f0"][low], pitch[low]))) for k, r in pr.items()}
    res["median_abs_cents_pyin"] = {k: _median(np.abs(cents_off(r["pyin_f0"], pitch))) for k, r in pr.items()}
    res["frame_mse_to_real_codes"] = {k: _num(x) for k, x in mse.items()}
    res["nearest5_exact_velocity_share"] = _num(exact)
    if full:
        res["pitch_by_octave"] = pitch_by_octave(pr, pitch)
        res["pitch_21_108"] = pitch_21_108(pr, pitch)
    secs["pitch"] = time.time() - t0
    if "real" not in waves:
        res["real_audio"] = False
        res["seconds"] = {k: round(x, 1) for k, x in secs.items()}
        return res
    res["real_audio"] = True
    real = waves["real"]
    played = [k for k in waves if k != "real" and not k.endswith("_unlocked")]
    t1 = time.time()
    sd = {k: spectral_distances(waves[k], real, sr) for k in waves if k != "real"}
    res["mrstft_to_real"] = {k: _num(d["mrstft_batch"]) for k, d in sd.items()}
    res["logmel_l1_to_real"] = {k: _num(d["logmel_batch"]) for k, d in sd.items()}
    dist = {k: {"mrstft": sd[k]["mrstft"], "logmel": sd[k]["logmel"]} for k in played}
    cfg = SoundConfig(note_off_s=note_off)
    mfcc = {k: spectral_measures(waves[k], sr, cfg)["mfcc"] for k in played + ["real"]}
    from synth.eval.sound import timbre_distance

    for k in played:
        dist[k]["mfcc"] = timbre_distance(mfcc[k], mfcc["real"])
    res["mrstft_to_real_note_mean"] = {k: _mean(d["mrstft"]) for k, d in dist.items()}
    res["logmel_l1_to_real_note_mean"] = {k: _mean(d["logmel"]) for k, d in dist.items()}
    res["mfcc_to_real_mean"] = {k: _mean(d["mfcc"]) for k, d in dist.items()}
    res["mfcc_to_real_p50"] = {k: _median(d["mfcc"]) for k, d in dist.items()}
    sweep = [k for k in played if k.startswith("flow_g")]
    pairs = list(PAIRS) + [(s, b) for s in sweep for b in ("generator", "nearest5")]
    res["paired"] = paired(dist, pairs)
    res["paired_target"] = 0.6
    secs["distances"] = time.time() - t1
    if not full:
        res["seconds"] = {k: round(x, 1) for k, x in secs.items()}
        return res
    t2 = time.time()
    embs = {k: mfcc_stats(waves[k], sr) for k in played + ["real"]}
    res["distribution"] = distribution(embs, seed)
    secs["distribution"] = time.time() - t2
    t3 = time.time()
    main = [k for k in ("codec", "flow", "generator", "vae", "nearest5") if k in waves]
    if len(set(vel.tolist())) > 1:
        bl = {k: held_brightness_level(waves[k], sr, pitch, note_off) for k in main + ["real"]}
        res["velocity"] = velocity_measures({k: b for k, (b, _) in bl.items()}, {k: lv for k, (_, lv) in bl.items()},
                                              vel, pitch, fams, synth.velocity_layers)
    else:
        res["velocity"] = None
    secs["velocity"] = time.time() - t3
    if not skip_sound:
        t4 = time.time()
        res["sound"] = {k: sound_report(waves[k], real, sr, fams, insts, pitch, note_off_s=note_off, produced_key=k,
                                        pitch=False) for k in main}
        secs["sound"] = time.time() - t4
    res["seconds"] = {k: round(x, 1) for k, x in secs.items()}
    return res


def spread_c4(synth, args, rng, test_cache, test_points, train_cache, train_points, t_index, sweep, note_off):
    """Timbre spread of MIDI 60 notes (velocity nearest 100) at up to ``--spread-points`` instrument points."""
    import torch

    from synth.eval.sound import SoundConfig, spectral_measures, timbre_spread

    def c4_rows(cache, points):
        best = {}
        for i, m in enumerate(cache.meta):
            if int(m["pitch"]) == 60 and m["instrument_str"] in points:
                d = abs(int(m.get("velocity", 100)) - 100)
                if m["instrument_str"] not in best or d < best[m["instrument_str"]][0]:
                    best[m["instrument_str"]] = (d, i)
        return {n: r for n, (_, r) in sorted(best.items())}

    held = list(c4_rows(test_cache, test_points).items())[: args.spread_points]
    tr = list(c4_rows(train_cache, train_points).items())
    tr = [tr[i] for i in sorted(rng.permutation(len(tr))[: max(0, args.spread_points - len(held))])]
    picks = [("test", test_cache, test_points, n, r) for n, r in held] + \
            [("train", train_cache, train_points, n, r) for n, r in tr]
    if len(picks) < 2:
        return {"instruments": len(picks), "note": "fewer than two instruments with a MIDI 60 note"}
    meta = [c.meta[r] for _, c, _, _, r in picks]
    names = [n for _, _, _, n, _ in picks]
    z = torch.tensor(np.stack([pts[n] for _, _, pts, n, _ in picks]), dtype=torch.float32)
    p = torch.full((len(picks),), 60)
    v = torch.tensor([int(m.get("velocity", 100)) for m in meta])
    std = torch.stack([torch.from_numpy((np.asarray(c.embeddings[r], np.float32) - c.mean) / c.std)[: synth.num_frames]
                       for _, c, _, _, r in picks])
    waves = {"codec": decode(synth, std)}
    for kind in models_of(synth):
        waves[kind] = played(synth, model_frames(synth, kind, z, p, v), p)
    for name, g in sweep.items():
        waves[name] = played(synth, model_frames(synth, "flow", z, p, v, guidance=g), p)
    waves["nearest5"] = decode(synth, nearest5_frames(meta, z.numpy(), train_points, train_cache, t_index,
                                                          synth.num_frames)[0])
    real = []
    for split in ("test", "train"):
        ms = [m for (s, *_), m in zip(picks, meta) if s == split]
        real += real_audio(args.data, split if split == "train" else args.split, [m["note_str"] for m in ms],
                             synth.sample_rate, waves["codec"].shape[1])
    if real and all(r is not None for r in real):
        waves["real"] = torch.from_numpy(np.stack(real))
    cfg = SoundConfig(note_off_s=note_off)
    spread = {k: timbre_spread(spectral_measures(w, synth.sample_rate, cfg)["mfcc"], names) for k, w in waves.items()}

    def ratio(ref):
        if ref not in spread:
            return None
        return {k: {m: (_num(s[m] / spread[ref][m], 4) if spread[ref][m] else None)
                    for m in ("mean_pairwise", "trace_cov")} for k, s in spread.items() if k != ref}

    return {"points": "instrument points: every held-out instrument with a MIDI 60 note (sorted by name), then a "
                      "seeded sample of training instruments, up to --spread-points; each generated at its own point",
            "pitch": 60, "instruments": len(picks), "held_out": len(held), "train": len(tr),
            "velocity": "the instrument's MIDI 60 note nearest velocity 100",
            "spread": {k: {m: _num(x, 4) if isinstance(x, float) else x for m, x in s.items()}
                       for k, s in spread.items()},
            "ratio_to_real": ratio("real"), "ratio_to_codec": ratio("codec"), "target_ratio_to_real": 0.8}


def guidance_sweep(synth, held: dict, spread: dict, sweep: dict) -> dict | None:
    if synth.flow is None:
        return None
    rows = []
    for name, g in sorted({"flow": synth.guidance, **sweep}.items(), key=lambda kv: kv[1]):
        paired = held.get("paired", {})
        rows.append({
            "guidance": g, "condition": name,
            "pitch_accuracy": held["pitch_accuracy"].get(name),
            "pitch_accuracy_pyin": held["pitch_accuracy_pyin"].get(name),
            "mrstft_to_real_note_mean": held.get("mrstft_to_real_note_mean", {}).get(name),
            "logmel_l1_to_real_note_mean": held.get("logmel_l1_to_real_note_mean", {}).get(name),
            "mfcc_to_real_mean": held.get("mfcc_to_real_mean", {}).get(name),
            "closer_than_generator": paired.get(f"{name}_closer_than_generator"),
            "closer_than_nearest5": paired.get(f"{name}_closer_than_nearest5"),
            "frechet_to_real": (held.get("distribution") or {}).get("frechet_to_real", {}).get(name),
            "spread_ratio_c4": ((spread.get("ratio_to_real") or {}).get(name) or {}).get("mean_pairwise"),
        })
    return {"default_guidance": synth.guidance, "steps": synth.steps, "sampler": synth.flow.cfg.sampler, "rows": rows}


def targets(held: dict, spread: dict) -> dict:
    """Issue 15's and 18's targets with the flow's (or, without a flow, the generator's) value and whether met."""
    m = "flow" if "flow" in held.get("pitch_accuracy", {}) else "generator"

    def row(value, target, higher=True):
        met = None if value is None else (value >= target if higher else value <= target)
        return {"value": value, "target": target, "met": met}

    paired = held.get("paired", {})
    out = {"model": m,
           "pitch_played": row(held["pitch_accuracy"].get(m), 0.99),
           "pitch_unlocked": row(held["pitch_accuracy"].get(f"{m}_unlocked"), 0.9)}
    if m == "flow":
        for b in ("generator", "nearest5"):
            for d in ("mrstft", "mfcc"):
                out[f"closer_than_{b}_{d}"] = row((paired.get(f"flow_closer_than_{b}") or {}).get(d), 0.6)
        fd = (held.get("distribution") or {}).get("frechet_to_real", {})
        rel = fd["flow"] / fd["generator"] if fd.get("flow") is not None and fd.get("generator") else None
        out["frechet_over_generator"] = row(_num(rel, 4), 0.7, higher=False)
    out["spread_ratio_c4"] = row(((spread.get("ratio_to_real") or {}).get(m) or {}).get("mean_pairwise"), 0.8)
    wr = (held.get("pitch_21_108") or {}).get("where_real_correct", {})
    out["pitch_21_108_where_real_correct"] = row(wr.get(m), 0.98)
    vel = held.get("velocity") or {}
    out["brightness_slope_families_within_30pct"] = (vel.get("share_of_families_slope_within_30pct") or {}).get(m)
    return out
