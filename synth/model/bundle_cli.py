"""``synth bundle build``: assemble a model bundle folder (codec + VAE + generator + stats + map points + hashes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", default="models/default/codec", help="codec folder (config.json + codec.pt)")
    parser.add_argument("--vae", required=True, help="VAE run folder")
    parser.add_argument("--gen", required=True, help="generator run folder (generator.json + generator.pt)")
    parser.add_argument("--gen-file", default="generator", help="which generator checkpoint: generator (best) or last")
    parser.add_argument("--emb", default="data/emb/default", help="embedding cache (statistics, map points, summary)")
    parser.add_argument("--out", default="models/default", help="bundle folder to write")
    parser.add_argument("--flow", default=None,
                        help="flow run folder (flow.json + flow.pt, the sampling generator) to include (optional)")
    parser.add_argument("--play-path", choices=("generator", "vae", "flow"), default="generator",
                        help="which network the instrument plays by default: the flow sampler, the MSE generator, or "
                             "the VAE decoder, as measurements decide (recorded in bundle.json)")
    parser.add_argument("--half-weights", action="store_true",
                        help="store generator.pt and flow.pt as float16 (half the bytes; they load as float32)")
    parser.add_argument("--tiny", action="store_true", help="write a tiny random-weights bundle instead (tests)")


def instrument_points(vae, emb_dir: str | Path, splits=("train", "valid", "test")) -> tuple[list[dict], dict]:
    """Centroid of mu per instrument for every split present, plus a data summary (notes/instruments per split)."""
    import numpy as np

    from synth.model.points import centroids, encode_notes
    from synth.model.data import load_notes, train_instruments

    classes = train_instruments(emb_dir)
    pr = (vae.cfg.pitch_min, vae.cfg.pitch_max)
    points, summary = [], {"splits": {}}
    for split in splits:
        try:
            notes = load_notes(emb_dir, split, classes, vae.cfg.num_frames, vae.cfg.time_pool, pr)
        except Exception as exc:  # a missing split is fine; say so
            print(f"split {split}: skipped ({exc})", file=sys.stderr)
            continue
        mu, _ = encode_notes(vae, notes)
        names, cents, fams = centroids(mu, notes.instrument_names, notes.family.numpy())
        for n, c, f in zip(names, cents, fams):
            points.append({"name": n, "family": notes.family_names[int(f)], "x": round(float(c[0]), 5),
                           "y": round(float(c[1]), 5), "split": split})
        fam_counts = {notes.family_names[int(f)]: int((fams == f).sum()) for f in np.unique(fams)}
        summary["splits"][split] = {"notes": len(notes), "instruments": len(names), "families": fam_counts}
    summary["pitch_range"] = list(pr)
    return points, summary


def run(args: argparse.Namespace) -> int:
    from synth.model.bundle import build_tiny_bundle, load_bundle, save_bundle

    if args.tiny:
        build_tiny_bundle(args.out)
        print(json.dumps({"out": args.out, "hash": load_bundle(args.out, device="cpu").hash, "tiny": True}))
        return 0
    import torch

    from synth.model.data import cache_stats
    from synth.model.generator import Generator, GeneratorConfig
    from synth.model.vae import load_vae

    vae = load_vae(args.vae)
    gen_dir = Path(args.gen)
    gen = Generator(GeneratorConfig.load(gen_dir / "generator.json"))
    gen.load_state_dict(torch.load(gen_dir / f"{args.gen_file}.pt", map_location="cpu", weights_only=True))
    mean, std = cache_stats(args.emb)
    points, summary = instrument_points(vae, args.emb)
    summary["emb"] = str(args.emb)
    summary["vae_run"] = str(args.vae)
    summary["generator_run"] = str(args.gen)
    log = gen_dir / "log.jsonl"
    if log.exists():
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        if lines:
            summary["generator_steps"] = lines[-1].get("step")
            best = [x for x in lines if x.get("best")]
            if best:
                summary["generator_best"] = best[-1]
    out = Path(args.out)
    codec = Path(args.codec)
    if codec.resolve() == (out / "codec").resolve():  # building in place: copy the codec aside first
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp()) / "codec"
        shutil.copytree(codec, tmp)
        codec = tmp
    flow = None
    if args.flow:
        from synth.model.flow import load_flow

        flow = load_flow(args.flow)
        summary["flow_run"] = str(args.flow)
    if args.play_path == "flow" and flow is None:
        print("bundle build: --play-path flow needs --flow <run folder>", file=sys.stderr)
        return 2
    save_bundle(out, codec, vae, gen, (mean, std), points, summary, extra={"play_path": args.play_path}, flow=flow,
                half_weights=args.half_weights)
    b = load_bundle(out, device="cpu")
    print(json.dumps({"out": str(out), "hash": b.hash, "instruments": len(points), "data": summary["splits"]}))
    return 0
