"""``synth prerender``: render the on-disk note grid over the timbre map, so pad moves are audible at once.

Every pitch of the model's range is generated at each point of a ``--grid N`` x N lattice over the map region the
bundle's instruments cover, and stored as one float16 ``.npy`` per point under
``platformdirs.user_cache_dir("pgesam-synth")/grid/<bundle hash>/`` (never in the repository). Resumable: finished
points are skipped, each file is written atomically, so Ctrl-C and re-running simply continues. The last line of
output is one JSON object (points done, seconds, folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synth.engine.note_cache import GridSpec, GridStore
from synth.engine.sources import NoteSource, source_bounds, source_hash
from synth.resources import default_bundle


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", type=int, default=9, help="points per side of the lattice (default 9 -> 81 points)")
    parser.add_argument("--bundle", default=str(default_bundle()),
                        help="model bundle folder (default: the bundled model, %(default)s)")
    parser.add_argument("--demo", action="store_true", help="use the built-in demo source instead of a bundle")
    parser.add_argument("--cache-dir", default=None, help="grid root folder (default: the user cache folder)")
    parser.add_argument("--batch", type=int, default=25, help="pitches per generate() call")
    parser.add_argument("--json", action="store_true", help="print only the final JSON line")


def prerender(source: NoteSource, store: GridStore, size: int, *, batch: int = 25, progress: bool = True,
              velocity: int = 100) -> dict:
    """Fill ``store`` with a ``size`` x ``size`` grid from ``source``; returns a summary dict."""
    import numpy as np
    from tqdm import tqdm

    lo, hi = source.pitch_range
    spec = GridSpec(size=int(size), bounds=source_bounds(source), pitches=tuple(range(int(lo), int(hi) + 1)),
                    sample_rate=int(source.sample_rate), velocity=velocity)
    store.create(spec)
    cells = [(i, j) for i in range(size) for j in range(size)]
    todo = [c for c in cells if not store.has(*c)]
    t0 = time.perf_counter()
    for i, j in tqdm(todo, desc="prerender grid", unit="point", disable=not progress, file=sys.stderr):
        xy = spec.point(i, j)
        rows = []
        for k in range(0, len(spec.pitches), max(1, batch)):
            rows.append(np.asarray(source.generate(xy, list(spec.pitches[k:k + batch]), velocity), np.float32))
        store.save(i, j, np.concatenate(rows, axis=0))
    return {"points": len(cells), "rendered": len(todo), "skipped": len(cells) - len(todo),
            "seconds": round(time.perf_counter() - t0, 2), "folder": str(store.dir), "bundle": store.bundle_hash}


def run(args: argparse.Namespace) -> int:
    from synth.engine.note_cache import MAX_GRID_SIZE

    if not 1 <= args.grid <= MAX_GRID_SIZE or args.batch < 1:  # checked before minutes of model loading
        print(f"prerender: --grid must be 1 to {MAX_GRID_SIZE} and --batch at least 1 (got {args.grid}, "
              f"{args.batch})", file=sys.stderr)
        return 2
    if args.demo:
        from synth.engine.sources import SineNoteSource

        source: NoteSource = SineNoteSource()
    else:
        if not (Path(args.bundle) / "bundle.json").exists():
            print(f"prerender: no model bundle at {args.bundle!r} (use --bundle PATH, or --demo for the built-in "
                  "demo sound)", file=sys.stderr)
            return 2
        from synth.engine.bundle_source import open_bundle
        from synth.model.bundle import BundleError

        try:  # the grid is its own cache: no disk note cache
            source = open_bundle(args.bundle, disk_cache=False, separate_process=False)
        except BundleError as exc:
            print(f"prerender: {exc}", file=sys.stderr)
            return 2
    store = GridStore(source_hash(source), Path(args.cache_dir) if args.cache_dir else None)
    summary = prerender(source, store, args.grid, batch=args.batch, progress=not args.json)
    print(json.dumps(summary))
    return 0
