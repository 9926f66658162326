"""What the stage-2 training commands (``synth train generator``, ``synth train flow``) share: their arguments and
the start of ``run`` (torch threads, the embedding cache check); the start is also used by ``synth train vae``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_stage2_args(parser: argparse.ArgumentParser, *, vae_help: str, out_example: str, valid_notes: int,
                    set_help: str, device_help: str | None = None, ckpt_minutes: bool = False) -> None:
    """The arguments of a stage-2 trainer on the embedding cache with a frozen VAE (resumable); ``ckpt_minutes``
    adds ``--ckpt-minutes`` (the flow trainer writes its resume checkpoint on a timer)."""
    parser.add_argument("--emb", default="data/emb/default", help="embedding cache folder")
    parser.add_argument("--vae", required=True, help=vae_help)
    parser.add_argument("--out", required=True, help=f"run folder, e.g. {out_example} (resumes when it holds ckpt.pt)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much wall time (resume later)")
    parser.add_argument("--steps", type=int, default=None, help="stop at this absolute step")
    parser.add_argument("--valid-every", type=int, default=500)
    parser.add_argument("--valid-notes", type=int, default=valid_notes)
    if ckpt_minutes:
        parser.add_argument("--ckpt-minutes", type=float, default=5.0, help="write the resume checkpoint this often")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--device", default=None, help=device_help)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy 2-core box)")
    parser.add_argument("--no-progress", action="store_true")


def start(args: argparse.Namespace) -> Path | None:
    """Set the torch thread count (``--threads``) and check the embedding cache (``--emb``) exists: its path, or
    None after telling why on stderr (the command then exits 2)."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    emb = Path(args.emb)
    if not emb.exists():
        print(f"no embedding cache at {emb}: run `python -m synth codec encode` first", file=sys.stderr)
        return None
    return emb


def say(message: str) -> None:
    """A message on stderr, once per launch: under torchrun only rank 0 speaks (every rank runs the command)."""
    from synth.distributed import main_process

    if main_process():
        print(message, file=sys.stderr)
