"""``synth render song.mid -o song.wav``: render a MIDI file offline with the instrument's own voices.

Examples::

    python -m synth render song.mid                          # song.wav beside it, GM families -> map regions
    python -m synth render song.mid -o out.wav --preset "Grand Keys"
    python -m synth render song.mid --map 40="Bowed Strings" --map 0=0.8,-0.2 --map bass="Round Bass"

Exit codes: 0 done; 2 bad input (a flag out of range, an unreadable or too long MIDI file, an unknown or broken
preset), checked before any model is loaded; 1 anything else (output exists, no model, disk errors). Errors are one
line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("midi", type=Path, help="MIDI file (type 0 or 1); channel 10 (drums) is skipped")
    parser.add_argument("-o", "--output", type=Path, help="WAV file to write (default: the MIDI file's name, .wav)")
    parser.add_argument("--preset", help="one preset (or X,Y map point) for every channel")
    parser.add_argument("--map", action="append", default=[], metavar="PROGRAM=PRESET",
                        help="timbre of a GM program 0-127 or a family (e.g. 40=\"Bowed Strings\", 0=0.5,-1); "
                             "repeatable")
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: the bundled model)")
    parser.add_argument("--demo", action="store_true", help="use the built-in demo sound instead of a model")
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--sample-format", choices=("pcm24", "float"), default="pcm24")
    parser.add_argument("--gain-db", type=float, default=-12.0,
                        help="master gain before the limiter (live default -12; allowed -96 to 24)")
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="refuse songs longer than this (default 30; the whole song is held in memory)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def run(args: argparse.Namespace) -> int:
    from synth.engine.lazy_source import SourceLoadError
    from synth.render import SourceError, apply_overrides, default_program_map, open_source, render_midi

    output = args.output or args.midi.with_suffix(".wav")
    if output.exists() and not args.force:
        print(f"synth render: {output} exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    try:
        timeline = _checked_input(args)
    except _BAD_INPUT as exc:
        return _fail(exc, 2)
    try:
        opened = open_source(args.bundle, args.demo)
        program_map = apply_overrides(default_program_map(opened.instruments), args.map, args.preset)
        print(f"source: {opened.description}", file=sys.stderr)
        with _ProgressBars(disabled=args.quiet) as bars:
            result = render_midi(timeline, output, opened.source, program_map, sample_rate=args.sample_rate,
                                 sample_format=args.sample_format, master_gain_db=args.gain_db, progress=bars.update)
    except _BAD_INPUT as exc:  # a --map or --preset that names no usable preset
        return _fail(exc, 2)
    except (SourceError, SourceLoadError, OSError) as exc:  # SourceLoadError: a bundle loaded only when needed
        return _fail(exc, 1)
    summary = _summary(result, args)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {output}: {summary['duration_s']:.2f} s, {summary['notes']} notes, peak "
              f"{summary['peak_dbfs']} dBFS, {summary['realtime_factor']:.1f}x real time "
              f"({summary['notes_generated']} notes generated)")
        if result.skipped_drum_notes:
            print(f"note: {result.skipped_drum_notes} drum notes on channel 10 were skipped (no drum kit on the map)")
    return 0


def _bad_input_errors() -> tuple[type[Exception], ...]:
    from synth.midi_file import MidiFileError
    from synth.presets import PresetError

    return MidiFileError, PresetError, ValueError  # synth.validate.InputError is a ValueError


_BAD_INPUT = _bad_input_errors()


def _checked_input(args: argparse.Namespace):
    """Every flag and the MIDI file checked before a model is loaded (seconds saved on every typo); returns the
    file's timeline."""
    from synth.midi_file import MidiTooLongError, read_midi
    from synth.render import apply_overrides, check_playable, check_sample_rate, default_program_map
    from synth.validate import MASTER_GAIN_DB_RANGE, finite_in_range

    finite_in_range(args.gain_db, *MASTER_GAIN_DB_RANGE, "--gain-db")
    check_sample_rate(args.sample_rate, "--sample-rate")
    minutes = finite_in_range(args.max_minutes, 0.0, 24 * 60.0, "--max-minutes")
    apply_overrides(default_program_map(presets=[]), args.map, args.preset)  # map points and preset names
    try:
        timeline = read_midi(args.midi, max_seconds=minutes * 60.0)
    except MidiTooLongError as exc:
        raise MidiTooLongError(f"{exc} with --max-minutes") from None
    check_playable(timeline)
    return timeline


def _fail(exc: Exception, code: int) -> int:
    print(f"synth render: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
    return code


def _summary(result, args) -> dict:
    peak = result.peak_dbfs
    return {
        "output": str(result.out_path),
        "duration_s": round(result.duration, 3),
        "notes": result.notes,
        "notes_generated": result.notes_generated,
        "generate_s": round(result.generate_seconds, 3),
        "mix_s": round(result.mix_seconds, 3),
        "realtime_factor": round(result.realtime_factor, 2),
        "peak_dbfs": round(peak, 2) if peak > -1e9 else None,
        "channels": {str(c): name for c, name in result.channel_timbres.items()},
        "sample_rate": args.sample_rate,
        "skipped_drum_notes": result.skipped_drum_notes,
    }


class _ProgressBars:
    """One tqdm bar per stage ("generate" notes, then "mix" frames), on stderr."""

    def __init__(self, disabled: bool) -> None:
        self.disabled = disabled
        self.bars: dict = {}

    def __enter__(self) -> "_ProgressBars":
        return self

    def update(self, stage: str, done: int, total: int) -> None:
        if self.disabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            unit = "note" if stage == "generate" else "frame"
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=unit, unit_scale=True, file=sys.stderr,
                                          leave=False)
        bar.update(done - bar.n)

    def __exit__(self, *exc) -> None:
        for bar in self.bars.values():
            bar.close()
