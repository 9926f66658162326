"""``synth train flow``: train the flow-matching generator on the embedding cache with a frozen VAE (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synth import distributed
from synth.model.train_cli_common import add_stage2_args, say, start


def configure(parser: argparse.ArgumentParser) -> None:
    add_stage2_args(parser, vae_help="VAE run folder (vae.json + vae.pt): gives the timbre points",
                    out_example="runs/flow/base", valid_notes=128, set_help="override a FlowConfig field",
                    device_help="cpu or cuda (default: cuda when available)", ckpt_minutes=True)
    parser.add_argument("--init", default=None, metavar="FOLDER",
                        help="start a new run from a trained flow: a flow run folder (flow.json + flow.pt) or a bundle "
                             "folder with a flow; ignored when --out already holds a checkpoint (that run resumes)")


def load_init_flow(folder: str | Path):
    """The trained flow in ``folder`` (a run folder or a bundle), or raise ValueError naming the folder."""
    from synth.model.flow import load_flow

    p = Path(folder)
    if (p / "flow.json").exists() and (p / "flow.pt").exists():
        return load_flow(p)
    if (p / "bundle.json").exists():
        from synth.model.bundle import load_bundle

        flow = load_bundle(p, device="cpu").flow
        if flow is None:
            raise ValueError(f"--init {p}: the bundle has no flow (bundle.json without flow_config)")
        return flow
    raise ValueError(f"--init {p}: neither a flow run folder (flow.json + flow.pt) nor a bundle (bundle.json)")


def run(args: argparse.Namespace) -> int:
    emb = start(args)
    if emb is None:
        return 2

    import torch

    from synth.model.data import cache_shape, load_notes, train_instruments
    from synth.model.flow import FlowConfig
    from synth.model.overrides import apply_overrides_validated
    from synth.model.train_flow import encode_mu, instrument_points, train_flow
    from synth.model.vae import load_vae

    out = Path(args.out)
    if not (Path(args.vae) / "vae.json").exists():
        print(f"no VAE run at {args.vae} (vae.json + vae.pt): run `python -m synth train vae` first", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    device = distributed.local_device(device)  # torchrun: this rank's GPU, before the VAE goes there
    vae = load_vae(args.vae).to(device)
    init = None
    if args.init and not (out / "ckpt.pt").exists():
        try:
            init = load_init_flow(args.init)
        except (ValueError, OSError, RuntimeError) as exc:  # RuntimeError: a BundleError naming the bad file
            print(exc, file=sys.stderr)
            return 2
    _, t, d = cache_shape(emb, "train")
    if (out / "flow.json").exists():
        cfg = FlowConfig.load(out / "flow.json")
    else:
        cfg = FlowConfig(num_frames=vae.cfg.num_frames, dim=d)
    if not apply_overrides_validated(cfg, args.set):
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
        say(f"no valid split ({exc}); selecting checkpoints on training loss")
        valid = None
    train_pts = points(train)
    valid_pts = points(valid) if valid is not None and len(valid) else None
    say(f"{len(train)} training notes; flow on {device}")
    try:
        with distributed.session(device) as dd:  # torchrun: one process per device (see the README)
            train_flow(train, valid, train_pts, valid_pts, cfg, out, minutes=args.minutes, max_steps=args.steps,
                       valid_every=args.valid_every, valid_notes=args.valid_notes, ckpt_minutes=args.ckpt_minutes,
                       device=dd.device, progress=not args.no_progress, init=init)
    except RuntimeError as exc:  # a resume the checkpoint does not allow: say why, change nothing
        print(exc, file=sys.stderr)
        return 2
    if not dd.is_main():
        return 0
    (out / "vae_source.txt").write_text(str(Path(args.vae).resolve()) + "\n")
    log = out / "log.jsonl"
    last = json.loads(log.read_text().splitlines()[-1]) if log.exists() and log.read_text().strip() else {}
    print(json.dumps({"out": str(out), "step": last.get("step"), "valid_loss": last.get("valid_loss")}))
    return 0
