"""``synth train vae``: train the timbre VAE on an embedding cache (resumable: rerun the same command)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synth import distributed
from synth.model.train_cli_common import say, start

ABLATIONS = ("no_kl", "no_reg", "no_nei", "no_fam")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emb", default="data/emb/default", help="embedding cache folder (synth codec encode)")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/vae/base (resumes when it holds ckpt.pt)")
    parser.add_argument("--epochs", type=int, default=None, help="number of epochs (default: config's)")
    parser.add_argument("--ablation", choices=ABLATIONS, action="append", default=[], help="switch a loss term off")
    parser.add_argument("--config", default=None, help="a VAEConfig JSON to start from")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field; the wide dataset (MIDI 21-108, layers 40/70/100/127): "
                             "--set pitch_min=21 --set pitch_max=108 --set velocity_cond=true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy 2-core box)")
    parser.add_argument("--no-progress", action="store_true")


def build_config(args: argparse.Namespace, num_frames: int, dim: int, num_instruments: int):
    from synth.model.overrides import apply_overrides
    from synth.model.vae import VAEConfig

    out = Path(args.out)
    if (out / "vae.json").exists() and args.config is None:
        cfg = VAEConfig.load(out / "vae.json")  # resuming: keep the run's config
    elif args.config:
        cfg = VAEConfig.load(args.config)
    else:
        cfg = VAEConfig()
    cfg.num_frames, cfg.dim, cfg.num_instruments = num_frames, dim, num_instruments
    if args.epochs is not None:
        cfg.epochs = args.epochs
    for name in args.ablation:
        setattr(cfg, name, True)
    return apply_overrides(cfg, args.set)


def run(args: argparse.Namespace) -> int:
    emb = start(args)
    if emb is None:
        return 2

    import torch

    from synth.model.data import cache_coverage, cache_shape, coverage_warnings, load_notes, train_instruments
    from synth.model.train_vae import train_vae

    n, t, d = cache_shape(emb, "train")
    classes = train_instruments(emb)
    try:
        cfg = build_config(args, num_frames=t, dim=d, num_instruments=len(classes))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    for line in coverage_warnings(cache_coverage(emb, "train"), cfg.pitch_min, cfg.pitch_max, cfg.velocity_cond):
        say(f"warning: {line}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    say(f"loading {n} training notes ({t} frames x {d}) from {emb}")
    train = load_notes(emb, "train", classes, cfg.num_frames, cfg.time_pool, (cfg.pitch_min, cfg.pitch_max))
    vels = sorted(set(train.velocity.tolist()))
    say(f"{len(train)} notes (MIDI {cfg.pitch_min}-{cfg.pitch_max}, velocities {vels}, velocity_cond "
        f"{cfg.velocity_cond}), {len(classes)} instruments; training {cfg.epochs} epochs on {device}")
    with distributed.session(device) as dd:  # torchrun: one process per device (see the README)
        model = train_vae(train, cfg, args.out, classes, device=dd.device, progress=not args.no_progress)
    if dd.is_main():
        health = _velocity_health(model, train, Path(args.out))
        print(json.dumps({"out": str(args.out), "epochs": cfg.epochs, "instruments": len(classes),
                          "notes": len(train), "velocity_response": health}))
    return 0


def _velocity_health(model, train, out: Path) -> dict:
    """Check that the trained decoder follows velocity at the instrument points (synth.model.vae_health), write it
    to ``velocity_health.json`` in the run folder and warn when it does not."""
    from synth import atomic
    from synth.model.vae_health import BLIND_COSINE, velocity_response

    health = velocity_response(model.cpu(), train)
    atomic.write_text(out / "velocity_health.json", json.dumps(health, indent=1) + "\n", file_mode=atomic.UMASK)
    if health.get("blind"):
        say(f"warning: the decoder is velocity-blind at the instrument points (median cosine of its soft-to-hard "
            f"change with the real notes' {health['cosine_p50']} < {BLIND_COSINE} over {health['cells']} cells): "
            f"the bundle would play every velocity alike; retrain with another --set seed=N "
            f"({out / 'velocity_health.json'})")
    return health
