"""``python -m synth codec eval``: round-trip quality, pitch accuracy (raw vs encoded) and decode cost of a codec on
a held-out split. The last line printed is one JSON object."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", default="models/default/codec", help="codec name (encodec-24khz) or codec folder")
    parser.add_argument("--encodec-checkpoint", default=None, help="local encodec_24khz-d7cc33bc.th (offline)")
    parser.add_argument("--data", default="data/notes")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-notes", type=int, default=None, help="evenly spread subset (crepe costs ~0.3 s/note here)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the round trips and crepe")
    parser.add_argument("--timing-threads", default="1,2", help="thread counts for the 25-note decode timing")
    parser.add_argument("--skip-pitch", action="store_true", help="no crepe pitch accuracy (fast)")
    parser.add_argument("--write-examples", default=None, help="folder for 8 round-trip WAVs (2 s, 16-bit)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from synth.codec.base import CodecError
    from synth.codec.encode_cli import codec_from_args
    from synth.codec.evaluate import evaluate_codec, write_examples

    torch.set_num_threads(args.threads)
    try:
        codec = codec_from_args(args)
    except CodecError as exc:
        print(f"synth codec eval: {exc}", file=sys.stderr)
        return 2
    result, arrays = evaluate_codec(codec, args.data, args.split, args.max_notes, args.seconds,
                                    progress=not args.json, skip_pitch=args.skip_pitch,
                                    timing_threads=tuple(int(t) for t in args.timing_threads.split(",") if t))
    result["command"] = "python -m synth codec eval " + " ".join(sys.argv[3:]) if sys.argv[1:3] == ["codec", "eval"] else None
    if args.write_examples:
        result["examples"] = write_examples(arrays, args.write_examples, codec.sample_rate)
    line = json.dumps(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if not args.json:
        for k, v in result.items():
            if not isinstance(v, (dict, list)):
                print(f"{k:>42}: {v}")
    print(line)
    return 0
