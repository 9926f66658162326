"""``synth dataset stats``: instruments and notes per family and split of a dataset in NSynth layout (ours or the
real NSynth), after the same filter the training uses. Prints a table, then one JSON object as the last line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("data/notes"), help="dataset folder (default data/notes)")
    parser.add_argument("--pitch-min", type=int, default=48)
    parser.add_argument("--pitch-max", type=int, default=72)
    parser.add_argument("--all-velocities", action="store_true", help="count every velocity (default only 100)")
    parser.add_argument("--max-instruments-per-family", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")


def stats(root: Path, pitch_range: tuple[int, int], velocities, max_per_family) -> dict:
    from synth.data.families import FAMILIES
    from synth.data.nsynth import SPLITS, read_split

    out: dict = {"root": str(root), "splits": {}}
    for split in SPLITS:
        if not (root / f"nsynth-{split}" / "examples.json").exists():
            continue
        examples = read_split(root, split, pitch_range, velocities, max_per_family)
        fam = {f: {"instruments": len({e.instrument_str for e in examples if e.family == f}),
                   "notes": sum(e.family == f for e in examples)} for f in FAMILIES}
        out["splits"][split] = {"instruments": len({e.instrument_str for e in examples}), "notes": len(examples),
                                "families": fam}
    return out


def _table(result: dict) -> str:
    from synth.data.families import FAMILIES

    splits = list(result["splits"])
    lines = [f"{'family':12s}" + "".join(f"{s:>16s}" for s in splits), f"{'':12s}" + "   instr / notes" * len(splits)]
    for f in FAMILIES:
        cells = [result["splits"][s]["families"][f] for s in splits]
        lines.append(f"{f:12s}" + "".join(f"{c['instruments']:>8d} /{c['notes']:>6d}" for c in cells))
    lines.append(f"{'total':12s}" + "".join(
        f"{result['splits'][s]['instruments']:>8d} /{result['splits'][s]['notes']:>6d}" for s in splits))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    velocities = None if args.all_velocities else (100,)
    try:
        result = stats(args.root, (args.pitch_min, args.pitch_max), velocities, args.max_instruments_per_family)
    except (FileNotFoundError, ValueError) as exc:
        print(f"dataset stats: {exc}")
        return 1
    if not result["splits"]:
        print(f"dataset stats: no nsynth-<split>/examples.json under {args.root}")
        return 1
    if not args.json:
        print(_table(result))
    print(json.dumps(result))
    return 0
