"""``synth export``: the notes of one timbre as WAV files or an SFZ instrument (see ``synth.export``).

Examples::

    python -m synth export --preset "Grand Keys" --format sfz -o packs/grand_keys
    python -m synth export --xy 0.4 -1.2 --pitches 36-84 --format wav --sample-format float -o notes/

Every file sounds at the pitch its name says: pitches outside the model's range are re-pitched from the nearest
generated note, with a warning naming them (see ``synth.export``).

Exit codes: 0 done; 2 bad input (a flag out of range, an unknown or broken preset), checked before any model is
loaded; 1 anything else (files would be overwritten, no model, disk errors). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--preset", help="preset name (its point, gain, attack and release are used)")
    where.add_argument("--xy", nargs=2, type=float, metavar=("X", "Y"), help="a point on the timbre map")
    parser.add_argument("--pitches", help="MIDI pitches, e.g. 48-72 or 36,48,60-64 (default: the model's whole "
                                          "range); pitches outside it are re-pitched from the nearest generated note")
    parser.add_argument("--velocity", type=int, default=100,
                        help="velocity the notes are generated at (1-127): a velocity-conditioned model gives the "
                             "timbre and level of its nearest velocity layer, older models ignore it. Samplers "
                             "scale by the played velocity.")
    parser.add_argument("--format", choices=("wav", "sfz"), default="sfz")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    parser.add_argument("--name", help="instrument / file name (default: the preset's name or the point)")
    parser.add_argument("--gain-db", type=float, help="master gain applied to every note (default: preset's, or 0)")
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--sample-format", choices=("pcm24", "float"), default="pcm24")
    parser.add_argument("--force", action="store_true", help="replace files an earlier export wrote")
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: the bundled model)")
    parser.add_argument("--demo", action="store_true", help="use the built-in demo sound instead of a model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def run(args: argparse.Namespace) -> int:
    from synth.export import ExportError, check_target, export_notes
    from synth.presets import PresetError
    from synth.engine.lazy_source import SourceLoadError
    from synth.render import SourceError, open_source

    try:
        request = _request(args)
    except (ExportError, PresetError, ValueError) as exc:  # synth.validate.InputError is a ValueError
        print(f"synth export: {exc}", file=sys.stderr)
        return 2
    try:
        check_target(request)  # refuse before loading a model (the planned files follow once the range is known)
        opened = open_source(args.bundle, args.demo)
        print(f"source: {opened.description}", file=sys.stderr)
        if not request.pitches:  # default: every key the model generates
            low, high = opened.source.pitch_range
            request = replace(request, pitches=tuple(range(int(low), int(high) + 1)))
        result = _export(export_notes, opened.source, request, args.quiet)
    except (ExportError, SourceError, SourceLoadError, PresetError, OSError) as exc:
        print(f"synth export: {exc}", file=sys.stderr)
        return 1
    peak = result.peak_dbfs
    summary = {"output": str(result.out_dir), "format": request.format, "notes": len(result.notes),
               "sfz": str(result.sfz_path) if result.sfz_path else None,
               "peak_dbfs": round(peak, 2) if peak > -1e9 else None, "gain_db": request.level_db,
               "velocity": request.velocity, "repitched": {str(p): q for p, q in result.repitched.items()}}
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {len(result.notes)} notes to {result.out_dir}" +
              (f" ({result.sfz_path.name})" if result.sfz_path else "") + f", peak {summary['peak_dbfs']} dBFS")
    if peak > 0 and request.sample_format == "pcm24":
        print("warning: the peak is above 0 dBFS and clipped in 24-bit files; lower --gain-db or use "
              "--sample-format float", file=sys.stderr)
    return 0


def _request(args: argparse.Namespace):
    """The request from the flags, every number checked (flag names in the messages)."""
    from synth.export import SAMPLE_RATE_RANGE, ExportError, ExportRequest, parse_pitches
    from synth.render import find_preset
    from synth.timbre import MAP_COORD_RANGE, Timbre
    from synth.validate import MASTER_GAIN_DB_RANGE, finite_in_range

    if not 1 <= args.velocity <= 127:
        raise ExportError(f"velocity {args.velocity} is outside 1-127")
    if args.gain_db is not None:
        finite_in_range(args.gain_db, *MASTER_GAIN_DB_RANGE, "--gain-db")
    finite_in_range(args.sample_rate, *SAMPLE_RATE_RANGE, "--sample-rate")
    for value in args.xy or ():
        finite_in_range(value, *MAP_COORD_RANGE, "--xy")
    if args.preset:
        preset = find_preset(args.preset)
        timbre, name = preset.timbre, preset.name
    else:
        timbre, name = Timbre(*args.xy), f"pgesam_x{args.xy[0]:.3f}_y{args.xy[1]:.3f}"
    pitches = parse_pitches(args.pitches) if args.pitches is not None else ()  # (): the model's range, once loaded
    return ExportRequest(timbre, out_dir=args.output, pitches=pitches, velocity=args.velocity, format=args.format,
                         name=args.name or name, gain_db=args.gain_db, sample_format=args.sample_format,
                         sample_rate=args.sample_rate, force=args.force)


def _export(export_notes, source, request, quiet: bool):
    if quiet:
        return export_notes(source, request)
    from tqdm import tqdm

    with tqdm(total=len(request.pitches), desc="export", unit="note", file=sys.stderr, leave=False) as bar:
        return export_notes(source, request, progress=lambda done, total: bar.update(done - bar.n))
