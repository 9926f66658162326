"""``synth bench generate``: how long a player waits after moving to a NEW point of the map.

For each play path the bundle has (the flow sampler, the MSE generator, the VAE decoder), as the engine's worker
generates them, audio included (network + codec decode): the first (most urgent) note alone, then the other 24 of
the 25 keys nearest it in one call, then the rest of the bundle's keys (88 for MIDI 21-108) in one call; reported as
``first_note_s``, ``nearest_25_s`` (first + 24) and ``all_keys_s`` (first + 24 + rest). Medians over ``--repeats``
new points. For the flow: the steps / time trade-off (``--steps`` x ``--samplers``, at the bundle's guidance) for
the 25 nearest keys and for the first note, codec decode included, with the network and decode split. The
generator's breakdown of earlier versions (network vs codec, ms per step) is kept under the same keys. Runs on the
bundled model when present, else on a tiny random bundle (the JSON says which: timings of a tiny bundle say nothing
about the real model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from synth.resources import default_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default=str(default_bundle()), help="model bundle folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-pitch", type=int, default=60, help="the most urgent pitch (generated alone first)")
    parser.add_argument("--velocity", type=int, default=100)
    parser.add_argument("--steps", default="4,6,8,12,16", help="flow step counts of the trade-off table")
    parser.add_argument("--samplers", default="euler,heun", help="flow samplers of the trade-off table")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: as the engine runs it on CPU: all cores but one, at least 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 4)


def _keys(synth, first_pitch: int) -> tuple[int, list[int], list[int], list[int]]:
    """(first key, the other 24 of the 25 nearest keys, the remaining keys, all keys) of the bundle's range."""
    lo, hi = synth.pitch_range
    if synth.flow is not None:
        lo, hi = max(lo, synth.flow.cfg.pitch_min), min(hi, synth.flow.cfg.pitch_max)
    keys = list(range(lo, hi + 1))
    first = min(max(first_pitch, lo), hi)
    near = sorted(sorted(keys, key=lambda p: (abs(p - first), p))[:25])
    return first, [p for p in near if p != first], [p for p in keys if p not in near], keys


def _paths(synth) -> dict:
    out = {}
    if synth.flow is not None:
        out["flow"] = synth.generate_flow
    out["generator"] = synth.generate_generator
    out["vae"] = synth.generate_vae
    return out


def _flow_table(synth, xy, pitches, velocity, steps, samplers) -> list[dict]:
    """One row per (sampler, steps): seconds for the 25 nearest keys (network, decode, total) and the first note."""
    import torch

    z, p = synth.model_inputs(xy, pitches)
    v = torch.full((len(p),), velocity, dtype=torch.long, device=synth.device)
    rows = []
    with torch.inference_mode():
        for sampler in samplers:
            for k in steps:
                def net(n):
                    return synth.flow.generate(z[:n], p[:n], v[:n], steps=k, guidance=synth.guidance, sampler=sampler)

                def dec(frames, n):
                    return synth.safe_audio(synth.decode_standardized(synth.lock_pitch(frames, p[:n])))

                frames, t_net = _timed(lambda: net(len(p)))
                _, t_dec = _timed(lambda: dec(frames, len(p)))
                one, t_net1 = _timed(lambda: net(1))
                _, t_dec1 = _timed(lambda: dec(one, 1))
                rows.append({"sampler": sampler, "steps": k, "net_calls": k if sampler == "euler" else 2 * k - 1,
                             "model_s": t_net, "decode_s": t_dec, "total_s": t_net + t_dec,
                             "first_note_s": t_net1 + t_dec1})
    return rows


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from synth.engine.bundle_source import open_bundle
    from synth.model.bundle import build_tiny_bundle

    if args.threads:
        torch.set_num_threads(args.threads)
    elif not torch.cuda.is_available():
        # the engine keeps a core free for audio (synth.engine.model_source.leave_a_core_for_audio); on a busy 2-core
        # box 2 intra-op threads are also ~10x slower than 1 (spin-waiting), so measure what the player gets
        import os

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    which = "bundled"
    path = Path(args.bundle)
    tmp = None
    if not (path / "bundle.json").exists():
        tmp = tempfile.TemporaryDirectory()
        path = build_tiny_bundle(Path(tmp.name) / "tiny", flow=True)
        which = "tiny random bundle (no bundled model found at %s)" % args.bundle
    opened = open_bundle(path, device=args.device, disk_cache=False, separate_process=False, spare_core=False)
    bundle, synth = opened.bundle, opened.synthesizer
    first, near, rest, keys = _keys(synth, args.first_pitch)
    nearest = sorted([first] + near)
    vel = int(args.velocity)
    paths = _paths(synth)
    steps = [int(s) for s in str(args.steps).split(",") if s.strip()]
    samplers = [s.strip() for s in str(args.samplers).split(",") if s.strip()]
    for fn in paths.values():
        fn((0.0, 0.0), [first], vel)  # warm-up (allocations, thread pools)
    rng = np.random.default_rng(args.seed)
    rows, table = [], []
    for _ in range(args.repeats):
        r, a = 0.9 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        xy = (float(r * np.cos(a)), float(r * np.sin(a)))
        row = {"xy": [round(xy[0], 3), round(xy[1], 3)]}
        for name, fn in paths.items():
            _, t_first = _timed(lambda: fn(xy, [first], vel))
            _, t_near = _timed(lambda: fn(xy, near, vel))
            _, t_rest = _timed(lambda: fn(xy, rest, vel)) if rest else (None, 0.0)
            row.update({f"{name}_first_note_s": t_first, f"{name}_nearest_25_s": t_first + t_near,
                        f"{name}_all_keys_s": t_first + t_near + t_rest})
        # the generator's breakdown, as in earlier versions of this bench (same keys)
        _, row["all_25_one_batch_s"] = _timed(lambda: synth.generate_generator(xy, nearest, vel))
        z, p = synth.model_inputs(xy, nearest)
        v = torch.full((len(p),), vel, dtype=torch.long, device=synth.device)
        with torch.inference_mode():
            frames, row["generator_25_s"] = _timed(lambda: synth.generator_frames(z, p, v))
            _, row["codec_decode_25_s"] = _timed(lambda: synth.decode_standardized(frames))
            _, row["generator_1_s"] = _timed(lambda: synth.generator_frames(z[:1], p[:1], v[:1]))
        if synth.flow is not None and steps and samplers:
            table.append(_flow_table(synth, xy, nearest, vel, steps, samplers))
        rows.append(row)
    med = {k: _median(rows, k) for k in rows[0] if k != "xy"}
    gsteps = bundle.generator.cfg.num_steps
    res = {
        "model": which,
        "bundle": str(args.bundle) if which == "bundled" else None,
        "hash": bundle.hash,
        "device": str(synth.device),
        "threads": torch.get_num_threads(),
        "play_path": synth.play_path,
        "velocity": vel,
        "keys": len(keys), "pitch_range": [keys[0], keys[-1]], "first_pitch": first,
        "nearest_25": [nearest[0], nearest[-1]],
        "notes": len(nearest),
        "num_frames": synth.num_frames,
        "repeats": args.repeats,
        "paths": {name: {"first_note_s": med[f"{name}_first_note_s"], "nearest_25_s": med[f"{name}_nearest_25_s"],
                         "all_keys_s": med[f"{name}_all_keys_s"]} for name in paths},
        # earlier versions' keys: the generator path (its 25 keys are the 25 nearest the first note)
        "first_note_s": med["generator_first_note_s"], "all_25_s": med["generator_nearest_25_s"],
        "vae_all_25_s": med["vae_nearest_25_s"],
        **{k: med[k] for k in ("all_25_one_batch_s", "generator_25_s", "codec_decode_25_s", "generator_1_s")},
        "frames_per_step": bundle.generator.cfg.frames_per_step,
        "generator_steps": gsteps,
        "generator_ms_per_step_batch25": round(1000 * med["generator_25_s"] / gsteps, 3),
        "generator_ms_per_step_batch1": round(1000 * med["generator_1_s"] / gsteps, 3),
        "targets": {"issue15_flow_first_note_s": 0.3, "issue15_flow_nearest_25_s": 1.5,
                    "issue18_nearest_25_s": 1.0, "issue18_all_88_keys_s": 4.0},
        "per_repeat": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    if synth.flow is not None:
        res["flow"] = {"steps": synth.steps, "guidance": synth.guidance, "sampler": synth.flow.cfg.sampler}
        res["flow_steps_table"] = [
            {**{k: v for k, v in cells[0].items() if not k.endswith("_s")},
             **{k: round(statistics.median(r[k] for r in cells), 4) for k in cells[0] if k.endswith("_s")}}
            for cells in zip(*table)] if table else []
        res["flow_steps_table_notes"] = ("25 nearest keys in one call at the bundle's guidance, codec decode "
                                         "included (model_s + decode_s = total_s); first_note_s: one note alone")
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:32} {v}")
    return 0
