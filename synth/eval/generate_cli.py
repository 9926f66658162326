"""``synth eval generate``: how close generated notes come to real ones (issues 5, 15 and 18).

On held-out instruments (``--split test``), each note at its instrument's OWN point (bundle.json's point of the
instrument, else the centroid of the VAE's mu over its notes), its own pitch and its own velocity, side by side:
the real notes, the codec round trips of their cached codes (the ceiling), the flow sampler (when the bundle has
one; default steps and guidance, plus ``--guidance`` values to sweep), the MSE generator, the VAE decoder, and the
mean of the 5 nearest training instruments' codes at the same pitch. Reported (definitions in
``synth/eval/generate.py``'s docstring):

- pitch accuracy played and unlocked, torchcrepe and pYIN, real notes alongside; by octave over MIDI 21-108 (pYIN
  only outside MIDI 24-95, where crepe cannot track) and where the real note is in tune;
- MR-STFT, log-mel and MFCC-timbre distances to the real note, and the paired share of notes where one model's note
  is closer than another's (flow vs MSE generator and vs the 5-nearest mean: issue 15's >= 60% target);
- frame MSE of the standardized codes to the real note's;
- a Frechet distance between produced and real notes on an MFCC-statistics embedding (codec round trips = floor);
- release / noise / attack / timbre measures of each model's notes against the real ones (``synth.eval.sound``);
- timbre spread of MIDI 60 notes across up to 40 instrument points relative to the real instruments' spread;
- with velocity layers in the data: level and brightness per layer, brightness slope over velocity per family;
- the same distances on a sample of TRAINING instruments (generalization gap), and pitch accuracy at
  ``--random-points`` random pad points (one random pitch and velocity each).
Notes are a seeded sample (``--max-notes``): torchcrepe is the cost of this eval on a CPU (~15 s per 100 notes and
condition). The last printed line is the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from synth.eval import generate as G
from synth.resources import default_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default=str(default_bundle()), help="model bundle folder")
    parser.add_argument("--emb", default=None,
                        help="embedding cache of the bundle's codec (default: the one bundle.json says it was built "
                             "from when that folder exists, else data/emb/default)")
    parser.add_argument("--data", default="data/notes", help="dataset root (real audio, NSynth layout)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-notes", type=int, default=100, help="notes sampled from the split")
    parser.add_argument("--train-notes", type=int, default=50, help="notes sampled from train (overfitting check)")
    parser.add_argument("--random-points", type=int, default=200)
    parser.add_argument("--spread-points", type=int, default=40,
                        help="instrument points for the timbre spread at C4 (held-out first, then train)")
    parser.add_argument("--guidance", default="",
                        help="comma-separated flow guidance scales to sweep besides the default (e.g. 1,2,3)")
    parser.add_argument("--note-off", type=float, default=None,
                        help="note-off (s) for the sound measures (default 3.0; 0.75 of the note when under 4 s)")
    parser.add_argument("--skip-sound", action="store_true", help="skip the release/noise/attack reports")
    parser.add_argument("--seam-notes", type=int, default=24,
                        help="flow continuations measured for seams (held-out points, MIDI 48-72; 0 skips)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores but one)")
    parser.add_argument("--json", action="store_true")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def instrument_points(synth, emb, split, classes) -> tuple[dict, int]:
    """Instrument -> point: bundle.json's point where the bundle lists the instrument (where it sits on the pad),
    else the centroid of the VAE's mu over its notes; and how many came from bundle.json."""
    from synth.model.points import centroids, encode_notes
    from synth.model.data import load_notes

    vae = synth.vae
    pr = (vae.cfg.pitch_min, vae.cfg.pitch_max)
    notes = load_notes(emb, split, classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
    mu, _ = encode_notes(vae, notes)
    names, cents, _ = centroids(mu, notes.instrument_names, notes.family.numpy())
    listed = {i.name: np.array([i.x, i.y], np.float32) for i in synth.bundle.instruments}
    pts = {n: listed.get(n, c) for n, c in zip(names, cents)}
    return pts, sum(n in listed for n in names)


def _sweep_names(synth, guidances) -> dict:
    """Condition name -> guidance of the extra sweep values (the default guidance is the ``flow`` condition)."""
    if synth.flow is None:
        return {}
    return {f"flow_g{g:g}": g for g in guidances if abs(g - synth.guidance) > 1e-9}


def _conditions(synth, cache, rows, points, train_points, train_cache, t_index, data_root, split, sweep):
    """(waves, standardized frames, meta, nearest5 exact-velocity share) of every condition for ``rows``."""
    import torch

    meta = [cache.meta[i] for i in rows]
    p = torch.tensor([int(m["pitch"]) for m in meta])
    v = torch.tensor([int(m.get("velocity", 100)) for m in meta])
    z = torch.tensor(np.stack([points[m["instrument_str"]] for m in meta]), dtype=torch.float32)
    std = torch.from_numpy((np.asarray(cache.embeddings[rows], np.float32) - cache.mean) / cache.std)
    std = std[:, : synth.num_frames]
    waves, frames = {"codec": G.decode(synth, std)}, {}
    for kind in G.models_of(synth):
        frames[kind] = G.model_frames(synth, kind, z, p, v)
        waves[kind], waves[f"{kind}_unlocked"] = G.played_and_unlocked(synth, frames[kind], p)
    for name, g in sweep.items():
        frames[name] = G.model_frames(synth, "flow", z, p, v, guidance=g)
        waves[name] = G.played(synth, frames[name], p)
    frames["nearest5"], exact = G.nearest5_frames(meta, z.numpy(), train_points, train_cache, t_index,
                                                  synth.num_frames)
    waves["nearest5"] = G.decode(synth, frames["nearest5"])
    real = G.real_audio(data_root, split, [m["note_str"] for m in meta], synth.sample_rate, waves["codec"].shape[1])
    if all(r is not None for r in real) and real:
        waves["real"] = torch.from_numpy(np.stack(real))
    mse = {k: G.frame_mse(synth, f, std) for k, f in frames.items()}
    return waves, mse, meta, exact


def _random_points(synth, args, rng, train_points) -> dict:
    import torch

    from synth.eval.audio_metrics import pitch_accuracy

    allc = np.stack(list(train_points.values()))
    (x0, y0), (x1, y1) = allc.min(0), allc.max(0)
    n = args.random_points
    z = torch.tensor(np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], 1), dtype=torch.float32)
    lo, hi = _pitch_range(synth)
    p = torch.tensor(rng.integers(lo, hi + 1, n))
    v = torch.tensor(rng.choice(list(synth.velocity_layers), n))
    ok = G.crepe_tracks(p.numpy())
    out = {"points": n, "pitch_range": [lo, hi], "velocity_layers": list(synth.velocity_layers),
           "crepe_notes": int(ok.sum()), "tracker": f"crepe, notes in MIDI {G.CREPE_MIN_MIDI}-{G.CREPE_MAX_MIDI}"}
    for kind in [k for k in G.models_of(synth) if k != "vae"]:
        played, unlocked = G.played_and_unlocked(synth, G.model_frames(synth, kind, z, p, v), p)
        key = "" if kind == "generator" else f"_{kind}"  # the generator's keys as before
        out[f"pitch_accuracy{key}"] = G._num(pitch_accuracy(played[ok], synth.sample_rate, p.numpy()[ok])["accuracy"])
        out[f"pitch_accuracy_unlocked{key}"] = G._num(pitch_accuracy(unlocked[ok], synth.sample_rate,
                                                                     p.numpy()[ok])["accuracy"])
    return out


def _seams(synth, n: int, rng, test_points: dict, note_off: float) -> dict:
    """Seams of one continuation per note at held-out instruments' points (issue 15's long notes)."""
    import torch

    from synth.eval import seam

    t1 = time.time()
    names = sorted(test_points)
    lo, hi = _pitch_range(synth)
    z = torch.tensor(np.stack([test_points[names[i]] for i in rng.integers(0, len(names), n)]), dtype=torch.float32)
    p = torch.tensor(rng.integers(max(lo, 48), min(hi, 72) + 1, n))
    v = torch.full((n,), 100)
    res = seam.measure(synth, z, p, v, join_s=min(2.0, 2 * note_off / 3), note_off_s=note_off)
    res["seconds"] = round(time.time() - t1, 1)
    return res


def _pitch_range(synth) -> tuple[int, int]:
    lo, hi = synth.pitch_range
    if synth.flow is not None:
        lo, hi = max(lo, synth.flow.cfg.pitch_min), min(hi, synth.flow.cfg.pitch_max)
    return lo, hi


def evaluate(args) -> dict:
    from synth.engine.bundle_source import open_bundle
    from synth.eval.bundle_cache import resolve_emb, stats_mismatch
    from synth.model.data import open_cache, train_instruments

    t0 = time.time()
    opened = open_bundle(args.bundle, device=args.device, disk_cache=False, separate_process=False, spare_core=False)
    bundle, synth = opened.bundle, opened.synthesizer
    args.emb = resolve_emb(bundle.info, args.emb)
    sweep = _sweep_names(synth, _guidances(args.guidance))
    note_off = args.note_off
    length = synth.num_samples / synth.sample_rate
    if note_off is None:
        note_off = 3.0 if length >= 4.0 else round(0.75 * length, 3)
    classes = train_instruments(args.emb)
    rng = np.random.default_rng(args.seed)
    train_cache = open_cache(args.emb, "train")
    mismatch = stats_mismatch(bundle, train_cache)
    if mismatch:
        _log(f"warning: {mismatch}")
    t_index = G.train_index(train_cache)
    train_points, n_listed = instrument_points(synth, args.emb, "train", classes)
    lo, hi = _pitch_range(synth)
    out = {"bundle": str(args.bundle), "hash": bundle.hash, "emb": str(args.emb), "split": args.split,
           "play_path": synth.play_path,
           "flow": ({"steps": synth.steps, "guidance": synth.guidance, "sampler": synth.flow.cfg.sampler,
                     "guidance_sweep": sorted(sweep.values())} if synth.flow is not None else None),
           "velocity_layers": list(synth.velocity_layers), "pitch_range": [lo, hi], "note_off_s": note_off,
           "threads": None}
    test_points = None
    for split, n in ((args.split, args.max_notes), ("train", args.train_notes)):
        if n <= 0:
            continue
        _log(f"eval generate: {split}, {n} notes")
        cache = open_cache(args.emb, split)
        ok = [i for i, m in enumerate(cache.meta) if lo <= int(m["pitch"]) <= hi]
        rows = np.sort(rng.choice(ok, size=min(n, len(ok)), replace=False))
        if split == "train":
            points, listed = train_points, n_listed
        else:
            points, listed = instrument_points(synth, args.emb, split, classes)
            test_points = points
        t1 = time.time()
        waves, mse, meta, exact = _conditions(synth, cache, rows, points, train_points, train_cache, t_index,
                                              args.data, split, sweep if split != "train" else {})
        gen_s = time.time() - t1
        res = G.measure_split(synth, waves, mse, meta, exact, note_off, full=split != "train",
                             skip_sound=args.skip_sound, seed=args.seed)
        res["points"] = f"bundle.json points for {listed} of {len(points)} instruments, VAE mu centroids for the rest"
        res["seconds"]["generate_and_decode"] = round(gen_s, 1)
        out["train" if split == "train" else "held_out"] = res
    spread = {}
    if args.spread_points > 1 and test_points is not None and lo <= 60 <= hi:
        _log("eval generate: timbre spread at C4")
        t1 = time.time()
        spread = G.spread_c4(synth, args, rng, open_cache(args.emb, args.split), test_points, train_cache,
                            train_points, t_index, sweep, note_off)
        spread["seconds"] = round(time.time() - t1, 1)
        out["timbre_spread_c4"] = spread
    if "held_out" in out:
        out["guidance_sweep"] = G.guidance_sweep(synth, out["held_out"], spread, sweep)
        out["targets"] = G.targets(out["held_out"], spread)
    if getattr(args, "seam_notes", 0) > 0 and synth.flow is not None and test_points:
        _log("eval generate: continuation seams")
        out["continuation_seam"] = _seams(synth, args.seam_notes, rng, test_points, note_off)
    if args.random_points > 0:
        out["random_points"] = _random_points(synth, args, rng, train_points)
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _guidances(text: str) -> list[float]:
    from synth.engine.synthesizer import GUIDANCE_RANGE

    out = []
    for g in str(text).split(","):
        if g.strip():
            try:
                x = float(g)
            except ValueError:
                x = float("nan")
            if not (math.isfinite(x) and GUIDANCE_RANGE[0] <= x <= GUIDANCE_RANGE[1]):
                raise ValueError(f"--guidance: {g.strip()!r} is not a number in {GUIDANCE_RANGE}")
            out.append(x)
    return out


def json_clean(obj):
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else round(float(obj), 5)
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    if not (Path(args.bundle) / "bundle.json").exists():
        print(f"no model bundle at {args.bundle} (build one: python -m synth bundle build)", file=sys.stderr)
        return 2
    import os

    import torch

    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))
    try:
        _guidances(args.guidance)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    res = evaluate(args)
    res["threads"] = torch.get_num_threads()
    res = json_clean(res)
    print(json.dumps(res) if args.json else json.dumps(res, indent=1))
    return 0
