"""Does the held-out V_pitch / V_inst grow with the number of training instruments?

Trains the VAE (the shipped config: ``runs/vae/default/vae.json`` unless ``--config``) on every ``k``-th training
instrument (sorted names) with the epochs scaled by ``k`` so every run makes about the same number of optimizer
steps, then evaluates each on the full held-out split, like ``python -m synth eval latent --split test``.

    python scripts/instrument_scaling.py --every 4 --out runs/vae/scale4

Resumable (each run folder resumes); prints JSON.
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, required=True, help="keep every Nth training instrument")
    ap.add_argument("--out", required=True)
    ap.add_argument("--emb", default="data/emb/default")
    ap.add_argument("--config", default="runs/vae/default/vae.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from synth.eval.latent import evaluate_run
    from synth.model.data import load_notes, train_instruments
    from synth.model.train_vae import train_vae
    from synth.model.vae import VAEConfig

    cfg = VAEConfig.load(args.config)
    cfg.epochs *= args.every
    cfg.warmup_epochs *= args.every
    classes = train_instruments(args.emb)
    notes = load_notes(args.emb, "train", classes, cfg.num_frames, cfg.time_pool, (cfg.pitch_min, cfg.pitch_max))
    keep = set(classes[:: args.every])
    idx = [i for i, name in enumerate(notes.instrument_names) if name in keep]
    vae = train_vae(notes.subset(idx), cfg, args.out, classes)
    report = evaluate_run(vae, args.emb, "test")
    keys = ("ratio", "V_inst", "V_pitch", "spread_x", "spread_y", "knn_family_acc_k1", "knn_family_acc_k5")
    print(json.dumps({"every": args.every, "train_instruments": len(keep), "train_notes": len(idx),
                      "epochs": cfg.epochs, **{k: report[k] for k in keys}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
