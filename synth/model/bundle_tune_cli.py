"""``synth bundle tune``: change a bundle's flow sampling settings in place (see synth.model.bundle_tune)."""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    from synth.model.bundle_tune import SAMPLING_FIELDS

    parser.add_argument("--bundle", default="models/default", help="bundle folder to update in place")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"a sampling setting of the flow ({', '.join(SAMPLING_FIELDS)}); repeatable")


def run(args: argparse.Namespace) -> int:
    from synth.model.bundle import BundleError
    from synth.model.bundle_tune import tune_flow

    try:
        print(json.dumps(tune_flow(args.bundle, args.set)))
    except (BundleError, OSError) as exc:
        print(f"synth bundle tune: {exc}", file=sys.stderr)
        return 2
    return 0
