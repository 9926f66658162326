"""``python -m synth codec eval``: round-trip quality, pitch accuracy (raw vs encoded) and decode cost of a codec on
a held-out split. The last line printed is one JSON object."""

from __future__ import annotations

import argparse
import json

from synth.resources import default_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", default=str(default_bundle() / "codec"),
                        help="codec name (encodec-24khz) or codec folder")
    parser.add_argument("--encodec-checkpoint", default=None, help="local encodec_24khz-d7cc33bc.th (offline)")
    parser.add_argument("--data", default="data/notes")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-notes", type=int, default=None, help="evenly spread subset (crepe costs ~0.3 s/note here)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the round trips and crepe")
    parser.add_argument("--timing-threads", default="1,2", help="thread counts for the 25-note decode timing")
    parser.add_argument("--skip-pitch", action="store_true", help="no pitch accuracy at all (fast)")
    parser.add_argument("--pitch-trackers", default="crepe,pyin",
                        help="pitch trackers to run, comma-separated: crepe (~0.3 s/note), pyin (~0.05 s/note)")
    parser.add_argument("--note-off", type=float, default=3.0,
                        help="seconds at which the notes release the key (the dataset's 4 s notes: 3.0)")
    parser.add_argument("--skip-sound", action="store_true",
                        help="no sound measures (release, noise, attack, timbre; synth.eval.sound)")
    parser.add_argument("--write-examples", default=None, help="folder for 8 round-trip WAVs (2 s, 16-bit)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from synth.codec.base import CodecError
    from synth.codec.encode_cli import codec_from_args
    from synth.eval.codec import evaluate_codec, write_examples

    torch.set_num_threads(args.threads)
    try:
        codec = codec_from_args(args)
    except CodecError as exc:
        print(f"synth codec eval: {exc}", file=sys.stderr)
        return 2
    result, arrays = evaluate_codec(codec, args.data, args.split, args.max_notes, args.seconds,
                                    progress=not args.json, skip_pitch=args.skip_pitch,
                                    timing_threads=tuple(int(t) for t in args.timing_threads.split(",") if t),
                                    note_off_s=args.note_off, sound=not args.skip_sound,
                                    pitch_trackers=tuple(t.strip() for t in args.pitch_trackers.split(",") if t.strip()))
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
        for text in sound_lines(result):
            print(text)
    print(line)
    return 0


def sound_lines(result: dict) -> list[str]:
    """A few human-readable lines of the sound measures (real vs round trip)."""
    lines = []
    rel, noise, timbre = result.get("release"), result.get("noise"), result.get("timbre")
    if rel:
        r, p = rel["real"], rel["roundtrip"]
        lines.append(f"{'release -40 dB within 1 s (real | rt)':>42}: {r['share_reaching_40db']} | "
                     f"{p['share_reaching_40db']}  swell>6 dB: {r['share_swell_6db']} | {p['share_swell_6db']}")
        lines.append(f"{'tail dBFS p50/p90 (real | rt)':>42}: {r['tail_dbfs_p50']}/{r['tail_dbfs_p90']} | "
                     f"{p['tail_dbfs_p50']}/{p['tail_dbfs_p90']}  loud where real silent: "
                     f"{rel['tail_above_-70dbfs_where_real_silent']}")
    if noise:
        r, p = noise["real"], noise["roundtrip"]
        lines.append(f"{'flatness dB p50/p90 (real | rt)':>42}: {r['flatness_db_p50']}/{r['flatness_db_p90']} | "
                     f"{p['flatness_db_p50']}/{p['flatness_db_p90']}")
        lines.append(f"{'>6 kHz dB p50/p90 (real | rt)':>42}: {r['hf6k_db_p50']}/{r['hf6k_db_p90']} | "
                     f"{p['hf6k_db_p50']}/{p['hf6k_db_p90']}")
    for fam, a in (result.get("attack_by_family") or {}).items():
        lines.append(f"{'attack ms p50, 30 ms >3 kHz dB ' + fam:>42}: {a['real']['attack_ms_p50']} | "
                     f"{a['roundtrip']['attack_ms_p50']} (x{a['attack_ratio']}), {a['real']['hf30ms_db_p50']} | "
                     f"{a['roundtrip']['hf30ms_db_p50']}")
    if timbre:
        lines.append(f"{'MFCC to own note p50 / other-inst. scale':>42}: {timbre['distance_to_own_p50']} / "
                     f"{timbre.get('real_nearest_other_instrument_p50')}  closer: "
                     f"{timbre.get('share_closer_than_own_nearest_other')}  spread ratio: {timbre['spread_ratio']}")
    return lines
