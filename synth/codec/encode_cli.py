"""``python -m synth codec encode``: encode a dataset into the embedding cache (resumable). Last line: JSON."""

from __future__ import annotations

import argparse
import json

from synth.resources import default_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", default=str(default_bundle() / "codec"),
                        help="codec name (encodec-24khz) or codec folder")
    parser.add_argument("--encodec-checkpoint", default=None, help="local encodec_24khz-d7cc33bc.th (offline)")
    parser.add_argument("--data", default="data/notes", help="dataset root in NSynth layout")
    parser.add_argument("--out", required=True, help="cache folder, e.g. data/emb/default")
    parser.add_argument("--splits", default="train,valid,test")
    parser.add_argument("--seconds", type=float, default=4.0, help="note length encoded (crop / zero-pad)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: faster than 2 on a shared CPU)")
    parser.add_argument("--shard", default=None, help="I/N: encode the I-th of N row ranges (run N processes)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N notes per split (smoke tests)")
    parser.add_argument("--no-progress", action="store_true")


def codec_from_args(args: argparse.Namespace):
    from synth.codec import load_codec

    kw = {}
    if args.codec == "encodec-24khz" and getattr(args, "encodec_checkpoint", None):
        kw["checkpoint"] = args.encodec_checkpoint
    return load_codec(args.codec, **kw)


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    from synth.codec.base import CodecError
    from synth.codec.cache import build_cache

    torch.set_num_threads(args.threads)
    try:
        codec = codec_from_args(args)
    except CodecError as exc:
        print(f"synth codec encode: {exc}", file=sys.stderr)
        return 2
    summary = build_cache(codec, args.data, args.out, splits=args.splits.split(","), seconds=args.seconds,
                          batch_size=args.batch_size, progress=not args.no_progress, limit=args.limit,
                          shard=tuple(int(v) for v in args.shard.split("/")) if args.shard else None)
    print(json.dumps(summary))
    return 0
