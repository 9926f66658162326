"""``synth eval velocity``: does velocity change the sound as much as in the real instruments (issue 18)?

Paired cells (``synth/eval/velocity.py``): held-out (instrument, pitch) pairs with real notes at two or more
velocity layers; the real notes, their codec round trips and each network's notes at the instrument's map point,
the cell's pitch and the real notes' velocities. Prints per family the median brightness slope (octaves of spectral
centroid over f0 from velocity 0 to 127) and level slope (dB) of each condition and their ratio to the real slope.
``--layer-noise shared`` samples the flow with one noise for every layer of a point (``FlowConfig.layer_noise``)
whatever the bundle says, to compare the two. The last printed line is the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from synth.eval import generate as G
from synth.eval import velocity as V
from synth.resources import default_bundle

KINDS = ("flow", "generator", "vae")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default=str(default_bundle()), help="model bundle folder")
    parser.add_argument("--emb", default=None,
                        help="embedding cache of the bundle's codec (default: the one bundle.json says it was built "
                             "from when that folder exists, else data/emb/default)")
    parser.add_argument("--data", default="data/notes", help="dataset root (real audio, NSynth layout)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-cells", type=int, default=150, help="(instrument, pitch) cells sampled (0 = all)")
    parser.add_argument("--models", default="flow,generator",
                        help=f"comma-separated networks to measure besides real and codec: {', '.join(KINDS)}")
    parser.add_argument("--layer-noise", choices=("bundle", "per_layer", "shared"), default="bundle",
                        help="the flow's noise across velocity layers (default: what the bundle says)")
    parser.add_argument("--guidance", type=float, default=None, help="flow guidance (default: the bundle's)")
    parser.add_argument("--note-off", type=float, default=3.0, help="note-off (s) of the held frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores but one)")
    parser.add_argument("--json", action="store_true")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _examples(data_root: str, split: str) -> dict:
    path = Path(data_root) / f"nsynth-{split}" / "examples.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"eval velocity: cannot read {path}: {exc}") from None


def _waves(synth, args, kinds, cells, rows, points, cache) -> dict:
    """Condition -> waves ``[N, S]`` (torch) for the flattened (cell, velocity) rows."""
    import torch

    note_strs = [cells[c].note_strs[j] for c, j in rows]
    p = torch.tensor([cells[c].pitch for c, _ in rows])
    v = torch.tensor([cells[c].velocities[j] for c, j in rows])
    z = torch.tensor(np.stack([points[cells[c].instrument] for c, _ in rows]), dtype=torch.float32)
    real = G.real_audio(args.data, args.split, note_strs, synth.sample_rate, synth.num_samples)
    if any(r is None for r in real):
        missing = [s for s, r in zip(note_strs, real) if r is None][:3]
        raise SystemExit(f"eval velocity: real audio missing under {args.data} for {missing} ...")
    waves = {"real": torch.from_numpy(np.stack(real))}
    index = {m["note_str"]: i for i, m in enumerate(cache.meta)}
    if all(s in index for s in note_strs):
        idx = np.asarray([index[s] for s in note_strs])
        std = (np.asarray(cache.embeddings[idx], np.float32) - cache.mean) / cache.std
        waves["codec"] = G.decode(synth, torch.from_numpy(std)[:, : synth.num_frames])
    else:
        _log("eval velocity: notes missing from the embedding cache: no codec condition")
    for kind in kinds:
        t = time.time()
        waves[kind] = G.played(synth, G.model_frames(synth, kind, z, p, v, guidance=args.guidance), p)
        _log(f"eval velocity: {kind} {len(rows)} notes in {time.time() - t:.1f} s")
    return waves


def evaluate(args) -> dict:
    from synth.engine.bundle_source import open_bundle
    from synth.eval.bundle_cache import resolve_emb, stats_mismatch
    from synth.eval.generate_cli import instrument_points
    from synth.model.data import open_cache, train_instruments

    t0 = time.time()
    opened = open_bundle(args.bundle, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
    synth = opened.synthesizer
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS or (k == "flow" and synth.flow is None)]
    if bad:
        raise SystemExit(f"eval velocity: --models {bad}: not networks of this bundle ({', '.join(G.models_of(synth))})")
    args.emb = resolve_emb(opened.bundle.info, args.emb)
    cache = open_cache(args.emb, args.split)
    mismatch = stats_mismatch(opened.bundle, cache)
    if mismatch:
        _log(f"warning: {mismatch}")
    if synth.flow is not None and args.layer_noise != "bundle":
        synth.flow.cfg.layer_noise = args.layer_noise
    lo, hi = synth.pitch_range
    cells = V.velocity_cells(_examples(args.data, args.split), (lo, hi), synth.velocity_layers)
    if not cells:
        raise SystemExit(f"eval velocity: no (instrument, pitch) of {args.split} has notes at two velocity layers")
    rng = np.random.default_rng(args.seed)
    if 0 < args.max_cells < len(cells):
        cells = [cells[i] for i in np.sort(rng.choice(len(cells), args.max_cells, replace=False))]
    points, _ = instrument_points(synth, args.emb, args.split, train_instruments(args.emb))
    cells = [c for c in cells if c.instrument in points]
    rows = [(c, j) for c, cell in enumerate(cells) for j in range(len(cell.velocities))]
    _log(f"eval velocity: {len(cells)} cells, {len(rows)} notes")
    waves = _waves(synth, args, kinds, cells, rows, points, cache)
    pitches = [cells[c].pitch for c, _ in rows]
    slopes: dict[str, dict[str, list]] = {"brightness_octaves": {}, "level_db": {}}
    per_layer: dict = {}
    for name, w in waves.items():
        bright, level = G.held_brightness_level(w, synth.sample_rate, pitches, args.note_off)
        for measure, values in (("brightness_octaves", bright), ("level_db", level)):
            slopes[measure][name] = [V.cell_slope([values[i] for i, (c2, _) in enumerate(rows) if c2 == c],
                                                  cells[c].velocities) for c in range(len(cells))]
        vel = np.asarray([cells[c].velocities[j] for c, j in rows])
        per_layer[name] = {str(lay): {"notes": int((vel == lay).sum()),
                                      "brightness_octaves_p50": G._median(bright[vel == lay]),
                                      "level_dbfs_p50": G._median(level[vel == lay])}
                           for lay in sorted(set(vel.tolist()))}
    families = [c.family for c in cells]
    out = {"bundle": str(args.bundle), "hash": opened.hash, "emb": str(args.emb), "split": args.split,
           "cells": len(cells),
           "notes": len(rows), "instruments": len({c.instrument for c in cells}),
           "layer_noise": synth.flow.cfg.layer_noise if synth.flow is not None else None,
           "guidance": synth.guidance if args.guidance is None else args.guidance,
           "brightness": V.summarize(slopes["brightness_octaves"], families),
           "level": V.summarize(slopes["level_db"], families), "by_layer": per_layer,
           "seconds": round(time.time() - t0, 1)}
    return out


def run(args: argparse.Namespace) -> int:
    if not (Path(args.bundle) / "bundle.json").exists():
        print(f"no model bundle at {args.bundle} (build one: python -m synth bundle build)", file=sys.stderr)
        return 2
    import os

    import torch

    from synth.eval.generate_cli import json_clean

    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))
    res = json_clean(evaluate(args))
    res["threads"] = torch.get_num_threads()
    print(json.dumps(res) if args.json else json.dumps(res, indent=1))
    return 0
