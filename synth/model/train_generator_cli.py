"""``synth train generator``: train the generator on the embedding cache with a frozen VAE (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synth import distributed
from synth.model.train_cli_common import add_stage2_args, say, start


def configure(parser: argparse.ArgumentParser) -> None:
    add_stage2_args(parser, vae_help="VAE run folder (vae.json + vae.pt)", out_example="runs/gen/base",
                    valid_notes=64, set_help="override a config field")


def run(args: argparse.Namespace) -> int:
    emb = start(args)
    if emb is None:
        return 2

    import torch

    from synth.model.data import cache_coverage, cache_shape, coverage_warnings, load_notes, train_instruments
    from synth.model.generator import GeneratorConfig
    from synth.model.overrides import apply_overrides
    from synth.model.train_generator import train_generator
    from synth.model.vae import load_vae

    out = Path(args.out)
    vae = load_vae(args.vae)
    _, t, d = cache_shape(emb, "train")
    if (out / "generator.json").exists():
        cfg = GeneratorConfig.load(out / "generator.json")
    else:
        # a new run takes the VAE's pitch range and velocity conditioning (--set may still change them)
        cfg = GeneratorConfig(num_frames=vae.cfg.num_frames, dim=d, pitch_min=vae.cfg.pitch_min,
                              pitch_max=vae.cfg.pitch_max, velocity_cond=vae.cfg.velocity_cond,
                              velocity_layers=tuple(vae.cfg.velocity_layers))
    try:
        apply_overrides(cfg, args.set)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    for line in coverage_warnings(cache_coverage(emb, "train"), cfg.pitch_min, cfg.pitch_max, cfg.velocity_cond):
        say(f"warning: {line}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    classes = train_instruments(emb)
    pr = (cfg.pitch_min, cfg.pitch_max)
    train = load_notes(emb, "train", classes, cfg.num_frames, 1, pr)
    try:
        valid = load_notes(emb, "valid", classes, cfg.num_frames, 1, pr)
    except Exception as exc:  # a cache without a valid split: select on training error instead
        say(f"no valid split ({exc}); selecting checkpoints on training error")
        valid = None
    say(f"{len(train)} training notes (MIDI {cfg.pitch_min}-{cfg.pitch_max}, velocities "
        f"{sorted(set(train.velocity.tolist()))}, velocity_cond {cfg.velocity_cond}); generator on {device}")
    try:
        with distributed.session(device) as dd:  # torchrun: one process per device (see the README)
            train_generator(train, valid, vae, cfg, out, minutes=args.minutes, max_steps=args.steps,
                            valid_every=args.valid_every, valid_notes=args.valid_notes, device=dd.device,
                            progress=not args.no_progress)
    except RuntimeError as exc:  # a resume the checkpoint does not allow: say why, change nothing
        print(exc, file=sys.stderr)
        return 2
    if dd.is_main():
        (out / "vae_source.txt").write_text(str(Path(args.vae).resolve()) + "\n")
        print(json.dumps({"out": str(out)}))
    return 0
