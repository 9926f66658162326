"""``synth eval generate``: pitch accuracy and spectral distances of generated notes (issue 5).

On held-out instruments (``--split test``), each at its OWN latent point (centroid of the VAE's mu over its notes):
- pitch accuracy (torchcrepe, ``synth.eval.audio_metrics``) of: the real notes ("ground truth raw"), codec round
  trips of the cached embeddings ("ground truth encoded"), generated notes, VAE-decoder notes, and the baseline
  "mean of the 5 nearest training instruments" (their standardized embeddings at the same pitch averaged, then
  decoded: what interpolating known instruments would give);
- multi-resolution STFT and log-mel L1 distances of each of these to the real note (codec round trip = ceiling);
- MSE of the standardized codec frames of generated, VAE-decoder and nearest-5 notes to the real note's frames
  (learned dims): the models' own error, before the codec's decoding error that dominates the audio distances;
- the share of notes where the generated note is closer to the real one than the VAE decoder's (paired);
- the same on a sample of TRAINING instruments (generalization gap);
- pitch accuracy at ``--random-points`` random points of the pad (uniform in the instruments' bounding box), one
  random pitch each: the player is not limited to where instruments sit.
Notes are a seeded sample (``--max-notes``) because crepe is the cost of this eval on a CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default="models/default", help="model bundle folder")
    parser.add_argument("--emb", default="data/emb/default", help="embedding cache (same codec as the bundle)")
    parser.add_argument("--data", default="data/notes", help="dataset root (real audio, NSynth layout)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-notes", type=int, default=100, help="notes sampled from the split")
    parser.add_argument("--train-notes", type=int, default=50, help="notes sampled from train (overfitting check)")
    parser.add_argument("--random-points", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores but one)")
    parser.add_argument("--json", action="store_true")


def _decode(synth, frames):
    import torch

    with torch.inference_mode():
        return torch.from_numpy(synth._safe(synth._decode(frames)))


def _played_and_raw(synth, frames, pitch):
    """(as the instrument plays it: pitch channel locked, as the network wrote it)."""
    return _decode(synth, synth.lock_pitch(frames, pitch)), _decode(synth, frames)


def _generate(synth, z, p, chunk: int = 25):
    """(played waves, unlocked waves, standardized frames) of the generator."""
    import torch

    played, raw, frames = [], [], []
    with torch.inference_mode():
        for i in range(0, len(z), chunk):
            pb = p[i : i + chunk].to(synth.device)
            f = synth.generator_frames(z[i : i + chunk].to(synth.device), pb)
            a, b = _played_and_raw(synth, f, pb)
            played.append(a)
            raw.append(b)
            frames.append(f.cpu())
    return torch.cat(played), torch.cat(raw), torch.cat(frames)


def _vae(synth, z, p):
    import torch

    with torch.inference_mode():
        pd = p.to(synth.device)
        f = synth.vae.decode(z.to(synth.device), pd)
        return (*_played_and_raw(synth, f, pd), f.cpu())


def _frame_mse(synth, frames, real) -> float:
    """MSE of standardized codec frames to the real note's, on the learned dims (the pitch channel is written from
    the pitch when played): a finer measure than the audio distances, which the codec's own error dominates."""
    d = synth._pitch_dim if synth._pitch_dim is not None else frames.shape[-1]
    t = min(frames.shape[1], real.shape[1])
    return float(((frames[:, :t, :d].float() - real[:, :t, :d].float()) ** 2).mean())


def _points(vae, emb, split, classes):
    from synth.eval.latent import centroids, encode_notes
    from synth.model.data import load_notes

    pr = (vae.cfg.pitch_min, vae.cfg.pitch_max)
    notes = load_notes(emb, split, classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
    mu, _ = encode_notes(vae, notes)
    names, cents, _ = centroids(mu, notes.instrument_names, notes.family.numpy())
    return dict(zip(names, cents))


def _real_audio(data_root, split, note_strs, sample_rate, num_samples):
    """Real waves for the given note_strs (None where the audio is not there)."""
    from synth.codec.notes import load_note_audio, read_notes

    try:
        by_name = {n.note_str: n for n in read_notes(data_root, split)}
    except Exception as exc:
        print(f"real audio unavailable for {split}: {exc}", file=sys.stderr)
        return [None] * len(note_strs)
    out = []
    for s in note_strs:
        n = by_name.get(s)
        out.append(None if n is None else load_note_audio(n, sample_rate, num_samples))
    return out


def _conditions(synth, emb, split, rows, points, train_points, train_cache, data_root):
    """Waves of every condition for the chosen rows of ``split``."""
    import torch

    from synth.model.data import open_cache

    cache = open_cache(emb, split)
    meta = [cache.meta[i] for i in rows]
    pitch = torch.tensor([int(m["pitch"]) for m in meta])
    z = torch.tensor(np.stack([points[m["instrument_str"]] for m in meta]), dtype=torch.float32)
    std_rows = torch.from_numpy((np.asarray(cache.embeddings[rows], np.float32) - cache.mean) / cache.std)
    t = synth.num_frames
    std_rows = std_rows[:, :t]
    waves = {"codec": _decode(synth, std_rows)}
    # "generated"/"vae": what the instrument plays (pitch channel locked, Synthesizer.lock_pitch); "*_unlocked": the
    # network's own pitch channel, to show what the lock does
    frames = {}
    waves["generated"], waves["generated_unlocked"], frames["generated"] = _generate(synth, z, pitch)
    waves["vae"], waves["vae_unlocked"], frames["vae"] = _vae(synth, z, pitch)
    # 5 nearest training instruments (excluding the instrument itself when it is a training one)
    tnames = sorted(train_points)
    tc = np.stack([train_points[n] for n in tnames])
    t_index = {}
    for i, m in enumerate(train_cache.meta):
        t_index[(m["instrument_str"], int(m["pitch"]))] = i
    nn_frames = []
    for m, zz in zip(meta, z.numpy()):
        order = np.argsort(((tc - zz) ** 2).sum(1))
        picks = []
        for j in order:
            if tnames[j] == m["instrument_str"]:
                continue
            r = t_index.get((tnames[j], int(m["pitch"])))
            if r is not None:
                picks.append(r)
            if len(picks) == 5:
                break
        e = (np.asarray(train_cache.embeddings[sorted(picks)], np.float32) - train_cache.mean) / train_cache.std
        nn_frames.append(torch.from_numpy(e[:, :t].mean(0)))
    frames["nearest5"] = torch.stack(nn_frames)
    waves["nearest5"] = _decode(synth, frames["nearest5"])
    frame_mse = {name: _frame_mse(synth, f, std_rows) for name, f in frames.items()}
    real = _real_audio(data_root, split, [m["note_str"] for m in meta], synth.sample_rate, waves["codec"].shape[1])
    if all(r is not None for r in real):
        waves["real"] = torch.from_numpy(np.stack(real))
    return waves, pitch.numpy(), frame_mse


def _measure(waves, pitch, sample_rate) -> dict:
    from synth.eval.audio_metrics import cents_off, log_mel_l1, mrstft_distance, pitch_accuracy

    res = {"notes": int(len(pitch)), "pitch_accuracy": {}, "median_abs_cents": {}, "mrstft_to_real": {},
           "logmel_l1_to_real": {}}
    for name, w in waves.items():
        acc = pitch_accuracy(w, sample_rate, pitch)
        res["pitch_accuracy"][name] = acc["accuracy"]
        cents = np.abs(cents_off(acc["f0"], pitch))  # NaN where the tracker found no voiced frame
        res["median_abs_cents"][name] = float(np.nanmedian(cents)) if np.isfinite(cents).any() else float("nan")
    if "real" in waves:
        for name, w in waves.items():
            if name == "real":
                continue
            res["mrstft_to_real"][name] = mrstft_distance(w, waves["real"])
            res["logmel_l1_to_real"][name] = log_mel_l1(w, waves["real"], sample_rate)
        res["generated_closer_than_vae"] = _win_rate(waves["generated"], waves["vae"], waves["real"], sample_rate)
    return res


def _win_rate(a, b, real, sample_rate) -> dict:
    """Share of notes where ``a`` is closer to the real note than ``b`` (paired, per note, each distance): shows
    whether a small difference of the means is a consistent one."""
    from synth.eval.audio_metrics import log_mel_l1, mrstft_distance

    out = {}
    for name, dist in (("mrstft", mrstft_distance), ("logmel", lambda w, r: log_mel_l1(w, r, sample_rate))):
        wins = [dist(a[i : i + 1], real[i : i + 1]) < dist(b[i : i + 1], real[i : i + 1]) for i in range(len(real))]
        out[name] = float(np.mean(wins)) if wins else float("nan")
    return out


def evaluate(args) -> dict:
    import torch

    from synth.engine.synthesizer import Synthesizer
    from synth.model.bundle import load_bundle
    from synth.model.data import open_cache, train_instruments

    t0 = time.time()
    bundle = load_bundle(args.bundle, device=args.device)
    synth = Synthesizer(bundle, device=args.device)
    classes = train_instruments(args.emb)
    rng = np.random.default_rng(args.seed)
    train_cache = open_cache(args.emb, "train")
    train_points = _points(bundle.vae, args.emb, "train", classes)
    out = {"bundle": str(args.bundle), "hash": bundle.hash, "split": args.split}
    lo, hi = bundle.pitch_range
    for split, n in ((args.split, args.max_notes), ("train", args.train_notes)):
        if n <= 0:
            continue
        cache = open_cache(args.emb, split)
        ok = [i for i, m in enumerate(cache.meta) if lo <= int(m["pitch"]) <= hi]
        rows = np.sort(rng.choice(ok, size=min(n, len(ok)), replace=False))
        points = train_points if split == "train" else _points(bundle.vae, args.emb, split, classes)
        waves, pitch, frame_mse = _conditions(synth, args.emb, split, rows, points, train_points, train_cache, args.data)
        res = _measure(waves, pitch, synth.sample_rate)
        res["frame_mse_to_real_codes"] = frame_mse
        out["train" if split == "train" else "held_out"] = res
    if args.random_points > 0:
        allc = np.stack(list(train_points.values()))
        (x0, y0), (x1, y1) = allc.min(0), allc.max(0)
        z = torch.tensor(np.stack([rng.uniform(x0, x1, args.random_points), rng.uniform(y0, y1, args.random_points)], 1),
                         dtype=torch.float32)
        p = torch.tensor(rng.integers(lo, hi + 1, args.random_points))
        from synth.eval.audio_metrics import pitch_accuracy

        played, unlocked, _ = _generate(synth, z, p)
        out["random_points"] = {"points": args.random_points,
                                "pitch_accuracy": pitch_accuracy(played, synth.sample_rate, p.numpy())["accuracy"],
                                "pitch_accuracy_unlocked": pitch_accuracy(unlocked, synth.sample_rate,
                                                                          p.numpy())["accuracy"]}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _clean(obj):
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, 5)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def run(args: argparse.Namespace) -> int:
    if not (Path(args.bundle) / "bundle.json").exists():
        print(f"no model bundle at {args.bundle} (build one: python -m synth bundle build)", file=sys.stderr)
        return 2
    import os

    import torch

    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))
    res = _clean(evaluate(args))
    if args.json:
        print(json.dumps(res))
    else:
        print(json.dumps(res, indent=1))
    return 0
