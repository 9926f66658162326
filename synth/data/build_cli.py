"""``synth dataset build``: render the SoundFont note dataset in NSynth layout (incremental, resumable)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _int_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("data/notes"), help="output folder (default data/notes)")
    parser.add_argument("--fonts", nargs="*", default=None,
                        help="font short names or .sf2/.sf3 paths (default: every installed font; see --list-fonts)")
    parser.add_argument("--list-fonts", action="store_true", help="list the installed fonts and exit")
    parser.add_argument("--programs", type=_int_list, default=None, help="GM programs, e.g. 0-7,40 (default all)")
    parser.add_argument("--pitch-min", type=int, default=48)
    parser.add_argument("--pitch-max", type=int, default=72)
    parser.add_argument("--velocities", type=_int_list, default=[100], help="comma list (default 100)")
    parser.add_argument("--wide", action="store_true",
                        help="also sample the rest of the keyboard and other velocity layers (see synth.data.build.WideGrid)")
    parser.add_argument("--key-range", type=_int_list, default=[21, 108], help="wide: lowest,highest key (default 21,108)")
    parser.add_argument("--layers", type=_int_list, default=[40, 70, 100, 127],
                        help="wide: velocity layers (default 40,70,100,127; 100 is the core's)")
    parser.add_argument("--range-stride", type=int, default=3, help="wide: every n-th key outside the core")
    parser.add_argument("--layer-stride", type=int, default=12, help="wide: every n-th key per other layer")
    parser.add_argument("--duration", type=float, default=4.0, help="note length in seconds (default 4)")
    parser.add_argument("--held", type=float, default=3.0, help="seconds before note-off (default 3)")
    parser.add_argument("--sample-rate", type=int, default=24000)
    parser.add_argument("--gain", type=float, default=2.0, help="fluidsynth synth.gain (default 2.0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the whole build report as JSON")


def run(args: argparse.Namespace) -> int:
    from synth.data.build import BuildConfig, build
    from synth.data.render import RenderConfig, discover_fonts

    if args.list_fonts:
        for font in discover_fonts():
            print(f"{font.short:12s} {font.path}")
        return 0
    if not 0 <= args.pitch_min <= args.pitch_max <= 127 or not 0 < args.held <= args.duration:
        print("dataset build: need 0 <= pitch-min <= pitch-max <= 127 and 0 < held <= duration")
        return 2
    wide = None
    if args.wide:
        from synth.data.build import WideGrid

        ok = (len(args.key_range) == 2 and 0 <= args.key_range[0] <= args.key_range[1] <= 127
              and all(1 <= v <= 127 for v in args.layers) and args.range_stride >= 1 and args.layer_stride >= 1)
        if not ok:
            print("dataset build: --key-range needs two keys in 0-127 (low,high), --layers velocities in 1-127, "
                  "strides >= 1")
            return 2
        wide = WideGrid(key_range=(args.key_range[0], args.key_range[1]), range_stride=args.range_stride,
                        layers=tuple(args.layers), layer_stride=args.layer_stride)
    render = RenderConfig(sample_rate=args.sample_rate, duration=args.duration, held=args.held, gain=args.gain)
    cfg = BuildConfig(root=args.root, fonts=args.fonts, programs=args.programs,
                      pitches=tuple(range(args.pitch_min, args.pitch_max + 1)), velocities=tuple(args.velocities),
                      render=render, progress=not args.no_progress, wide=wide)
    try:
        report = build(cfg)
    except KeyboardInterrupt:
        print(f"\ndataset build: interrupted; finished instruments are kept in {args.root} and examples.json lists "
              "only them. Run the same command again to continue.")
        return 130
    summary = {k: report[k] for k in ("instruments_kept", "instruments_dropped", "instruments_per_split",
                                      "notes_kept", "notes_dropped_in_kept_instruments", "timings_s")}
    print(f"dataset written to {args.root} (report: {args.root / 'build_report.json'})")
    print(json.dumps(report if args.json else summary))
    return 0
