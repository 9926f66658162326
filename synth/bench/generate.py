"""``synth bench generate``: how long a player waits after moving to a NEW point of the map.

Measures, for 25 notes (MIDI 48-72) at a fresh point, the time until the first (most urgent) note is ready — it is
generated alone first, as the engine's worker does — and until all 25 are ready (the other 24 in one batch), as
audio (generator + codec decode). Also: all 25 in a single batch, the VAE-decoder path, and the split between
generator and codec. Median over ``--repeats`` points. Runs on the bundled model when present, else on a tiny
random bundle (the JSON says which: timings of a tiny bundle say nothing about the real model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default="models/default", help="model bundle folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-pitch", type=int, default=60, help="the most urgent pitch (generated alone first)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: as the engine runs it on CPU: all cores but one, at least 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from synth.engine.synthesizer import Synthesizer
    from synth.model.bundle import build_tiny_bundle, load_bundle

    if args.threads:
        torch.set_num_threads(args.threads)
    elif not torch.cuda.is_available():
        # the engine keeps a core free for audio (synth.engine.engine._leave_a_core_for_audio); on a busy 2-core
        # box 2 intra-op threads are also ~10x slower than 1 (spin-waiting), so measure what the player gets
        import os

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    which = "bundled"
    path = Path(args.bundle)
    tmp = None
    if not (path / "bundle.json").exists():
        tmp = tempfile.TemporaryDirectory()
        path = build_tiny_bundle(Path(tmp.name) / "tiny")
        which = "tiny random bundle (no bundled model found at %s)" % args.bundle
    bundle = load_bundle(path, device=args.device)
    synth = Synthesizer(bundle, device=args.device)
    lo, hi = bundle.pitch_range
    pitches = list(range(max(48, lo), min(72, hi) + 1))
    first = min(max(args.first_pitch, pitches[0]), pitches[-1])
    rest = [p for p in pitches if p != first]
    rng = np.random.default_rng(args.seed)
    synth.generate_generator((0.0, 0.0), [first])  # warm-up (allocations, thread pools)
    rows = []
    for _ in range(args.repeats):
        r, a = 0.9 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        xy = (float(r * np.cos(a)), float(r * np.sin(a)))
        _, t_first = _timed(lambda: synth.generate_generator(xy, [first]))
        _, t_rest = _timed(lambda: synth.generate_generator(xy, rest))
        _, t_batch = _timed(lambda: synth.generate_generator(xy, pitches))
        _, t_vae = _timed(lambda: synth.generate_vae(xy, pitches))
        z = torch.tensor([xy] * len(pitches), dtype=torch.float32, device=synth.device)
        p = torch.tensor(pitches, device=synth.device)
        with torch.inference_mode():
            frames, t_gen = _timed(lambda: synth.generator_frames(z, p))
            _, t_dec = _timed(lambda: synth._decode(frames))
            _, t_gen1 = _timed(lambda: synth.generator_frames(z[:1], p[:1]))
        rows.append({"xy": [round(xy[0], 3), round(xy[1], 3)], "first_note_s": t_first, "all_25_s": t_first + t_rest,
                     "all_25_one_batch_s": t_batch, "vae_all_25_s": t_vae, "generator_25_s": t_gen,
                     "codec_decode_25_s": t_dec, "generator_1_s": t_gen1})
    med = {k: round(statistics.median(r[k] for r in rows), 4) for k in rows[0] if k != "xy"}
    steps = bundle.generator.cfg.num_steps
    res = {
        "model": which,
        "bundle": str(args.bundle) if which == "bundled" else None,
        "hash": bundle.hash,
        "device": str(synth.device),
        "threads": torch.get_num_threads(),
        "notes": len(pitches),
        "num_frames": synth.num_frames,
        "frames_per_step": bundle.generator.cfg.frames_per_step,
        "generator_steps": steps,
        "generator_ms_per_step_batch25": round(1000 * med["generator_25_s"] / steps, 3),
        "generator_ms_per_step_batch1": round(1000 * med["generator_1_s"] / steps, 3),
        "repeats": args.repeats,
        **med,
        "targets": {"first_note_s": 1.0, "all_25_s": 3.0},
        "per_repeat": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:32} {v}")
    return 0
