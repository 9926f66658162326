"""``synth eval latent``: V_inst, V_pitch, ratio, spread, pitch probe, kNN family accuracy (with chance levels), the
map's fill of its bounding box, velocity-freeness (V_velocity, velocity probe) and the map PNG. Every number is
defined in ``synth.eval.latent``'s docstring."""

from __future__ import annotations

import argparse
import json
import math

from synth.resources import default_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vae", default=None, help="VAE run folder (vae.json + vae.pt); default: the bundle's VAE")
    parser.add_argument("--bundle", default=str(default_bundle()),
                        help="bundle whose VAE to use when --vae is not given")
    parser.add_argument("--emb", default="data/emb/default", help="embedding cache folder")
    parser.add_argument("--split", default="test", help="held-out split to measure (test or valid)")
    parser.add_argument("--png", default=None, help="write the map picture here (family colours and regions, held-out "
                        "instruments named)")
    parser.add_argument("--probe-steps", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _clean(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    from synth.eval.latent import evaluate_run

    if args.vae:
        from synth.model.vae import load_vae

        vae = load_vae(args.vae)
    else:
        from synth.model.bundle import load_bundle

        vae = load_bundle(args.bundle, device="cpu").vae
    res = _clean(evaluate_run(vae, args.emb, args.split, args.png, args.probe_steps))
    res["vae"] = args.vae or args.bundle
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:26} {v}")
    return 0
