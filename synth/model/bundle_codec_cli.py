"""``synth bundle codec``: give a built bundle a fine-tuned decoder (same encoder; see synth.model.bundle_codec)."""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default="models/default", help="bundle folder to update in place")
    parser.add_argument("--codec", required=True,
                        help="codec folder whose encoder equals the bundle's (e.g. runs/codec/v6ft/codec)")
    parser.add_argument("--onset-fill", choices=("on", "off"), default=None,
                        help="set the codec's onset fill (a note's first frame at the next frame's level; no weights "
                             "change); default: as the folder has it")


def run(args: argparse.Namespace) -> int:
    from synth.model.bundle import BundleError
    from synth.model.bundle_codec import replace_codec

    try:
        fill = None if args.onset_fill is None else args.onset_fill == "on"
        print(json.dumps(replace_codec(args.bundle, args.codec, onset_fill=fill)))
    except (BundleError, OSError) as exc:
        print(f"synth bundle codec: {exc}", file=sys.stderr)
        return 2
    return 0
