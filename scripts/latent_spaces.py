"""How pitch-free each stage of the VAE's encoder is, from its input to the 2D map.

For one split, the same two numbers in every space: V_pitch / V_inst (``synth.eval.latent.variances``: the eval's
ratio, here also in many dimensions, so only comparable across spaces of one dimension) and the share of notes
whose nearest other note (Euclidean) belongs to the same instrument. Spaces: the input averaged over time, the input
in 8 time bins, the encoder's last hidden layer and mu (session 4 also read the projection of the contrastive
term, a retired experiment: models/default/MODEL_CARD.md, "Retired experiments").
The train split is subsampled to every 8th instrument so both splits hold about 40 instruments.

    python scripts/latent_spaces.py --vae runs/vae/default --emb data/emb/default

Prints JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F


def nearest_same_instrument(features: np.ndarray, names: list[str]) -> float:
    d = ((features[:, None] - features[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    labels = np.asarray(names)
    return float((labels[d.argmin(1)] == labels).mean())


def spaces(vae, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every space for prepared inputs ``x`` ``[N, D, T']`` (the encoder's own view: skipped dims dropped)."""
    seen = x[:, : vae.cfg.dim - vae.cfg.enc_skip_dims]
    with torch.no_grad():
        hidden = vae.encode_hidden(x)
        return {
            "input_time_mean": seen.mean(-1).numpy(),
            "input_8_bins": F.adaptive_avg_pool1d(seen, 8).flatten(1).numpy(),
            "encoder_hidden": hidden.numpy(),
            "mu": vae.to_mu(hidden).numpy(),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae", required=True)
    ap.add_argument("--emb", default="data/emb/default")
    ap.add_argument("--every", type=int, default=8, help="train split: keep every Nth instrument")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from synth.eval.latent import variances
    from synth.model.data import load_notes, train_instruments
    from synth.model.vae import load_vae

    vae = load_vae(args.vae)
    cfg = vae.cfg
    report: dict = {"vae": args.vae}
    for split in ("test", "train"):
        notes = load_notes(args.emb, split, train_instruments(args.emb), cfg.num_frames, cfg.time_pool,
                           (cfg.pitch_min, cfg.pitch_max))
        keep = set(sorted(set(notes.instrument_names))[:: args.every if split == "train" else 1])
        idx = [i for i, n in enumerate(notes.instrument_names) if n in keep]
        names = [notes.instrument_names[i] for i in idx]
        pitch = notes.pitch.numpy()[idx]
        rows = {}
        for space, feats in spaces(vae, notes.x[idx].float()).items():
            v_inst, v_pitch = variances(feats, names, pitch)
            rows[space] = {"dims": int(feats.shape[1]), "ratio": round(v_pitch / v_inst, 2),
                           "nearest_same_instrument": round(nearest_same_instrument(feats, names), 3)}
        report[split] = {"instruments": len(keep), "notes": len(idx), "spaces": rows}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
