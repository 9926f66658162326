"""``synth train flow``: train the flow-matching generator on the embedding cache with a frozen VAE (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emb", default="data/emb/default", help="embedding cache folder")
    parser.add_argument("--vae", required=True, help="VAE run folder (vae.json + vae.pt): gives the timbre points")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/flow/base (resumes when it holds ckpt.pt)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much wall time (resume later)")
    parser.add_argument("--steps", type=int, default=None, help="stop at this absolute step")
    parser.add_argument("--valid-every", type=int, default=500)
    parser.add_argument("--valid-notes", type=int, default=128)
    parser.add_argument("--ckpt-minutes", type=float, default=5.0, help="write the resume checkpoint this often")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a FlowConfig field")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is faster on a busy 2-core box)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from synth.model.data import cache_shape, load_notes, train_instruments
    from synth.model.flow import FlowConfig
    from synth.model.overrides import apply_overrides
    from synth.model.train_flow import encode_mu, instrument_points, train_flow
    from synth.model.vae import load_vae

    emb, out = Path(args.emb), Path(args.out)
    if not emb.exists():
        print(f"no embedding cache at {emb}: run `python -m synth codec encode` first", file=sys.stderr)
        return 2
    if not (Path(args.vae) / "vae.json").exists():
        print(f"no VAE run at {args.vae} (vae.json + vae.pt): run `python -m synth train vae` first", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    vae = load_vae(args.vae).to(device)
    _, t, d = cache_shape(emb, "train")
    if (out / "flow.json").exists():
        cfg = FlowConfig.load(out / "flow.json")
    else:
        cfg = FlowConfig(num_frames=vae.cfg.num_frames, dim=d)
    try:
        apply_overrides(cfg, args.set)
        cfg.__post_init__()
        cfg.validate()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    classes = train_instruments(emb)
    pr = (cfg.pitch_min, cfg.pitch_max)
    core = (vae.cfg.pitch_min, vae.cfg.pitch_max)

    def points(notes):
        return instrument_points(encode_mu(vae, notes.x), notes.instrument_names, notes.pitch, notes.velocity, core)

    train = load_notes(emb, "train", classes, cfg.num_frames, 1, pr)
    if not len(train):
        print(f"no training notes in MIDI {pr[0]}-{pr[1]} in {emb}", file=sys.stderr)
        return 2
    try:
        valid = load_notes(emb, "valid", classes, cfg.num_frames, 1, pr)
    except Exception as exc:  # a cache without a valid split: select on training loss instead
        print(f"no valid split ({exc}); selecting checkpoints on training loss", file=sys.stderr)
        valid = None
    train_pts = points(train)
    valid_pts = points(valid) if valid is not None and len(valid) else None
    print(f"{len(train)} training notes; flow on {device}", file=sys.stderr)
    try:
        train_flow(train, valid, train_pts, valid_pts, cfg, out, minutes=args.minutes, max_steps=args.steps,
                   valid_every=args.valid_every, valid_notes=args.valid_notes, ckpt_minutes=args.ckpt_minutes,
                   device=device, progress=not args.no_progress)
    except RuntimeError as exc:  # a resume the checkpoint does not allow: say why, change nothing
        print(exc, file=sys.stderr)
        return 2
    (out / "vae_source.txt").write_text(str(Path(args.vae).resolve()) + "\n")
    log = out / "log.jsonl"
    last = json.loads(log.read_text().splitlines()[-1]) if log.exists() and log.read_text().strip() else {}
    print(json.dumps({"out": str(out), "step": last.get("step"), "valid_loss": last.get("valid_loss")}))
    return 0
