"""``synth bundle codec``: give a built bundle a fine-tuned decoder (same encoder; see synth.model.bundle_codec)."""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default="models/default", help="bundle folder to update in place")
    parser.add_argument("--codec", required=True,
                        help="codec folder whose encoder equals the bundle's (e.g. runs/codec/v6ft/codec)")


def run(args: argparse.Namespace) -> int:
    from synth.model.bundle import BundleError
    from synth.model.bundle_codec import replace_codec

    try:
        print(json.dumps(replace_codec(args.bundle, args.codec)))
    except (BundleError, OSError) as exc:
        print(f"synth bundle codec: {exc}", file=sys.stderr)
        return 2
    return 0
