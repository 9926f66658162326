"""Velocity that changes the sound, measured pairwise (issue 18): how much brighter and louder a note gets from a
soft to a hard key press, real against generated, on the same instrument at the same pitch.

Why paired: ``synth eval generate`` samples notes and fits brightness on velocity across different instruments and
pitches of a family; with ~3 notes per (family, layer) the instrument differences swamp the velocity effect (a
family's real slope changed sign between seeds). Here every measure is a difference inside one *cell* = (held-out
instrument, pitch) for which the dataset has real notes at two or more velocities: the instrument, the pitch and the
map point are the same, only the velocity changes.

Per cell and condition (``real``, ``codec`` = round trips of the real notes' cached codes, each network at the
instrument's point with the real notes' velocities): brightness = log2(power-weighted spectral centroid of the held
frames / f0) and level = RMS dBFS of 0.25 s .. note-off (``synth.eval.generate.held_brightness_level``); slope =
least squares of the measure on velocity / 127 over the cell's velocities (octaves, or dB, from velocity 0 to 127).

Reported per family and over all cells: the median slope of each condition, the ratio of the model's median to the
real median (issue 18's target: within 30%), the median absolute difference of model and real slope per cell (the
readable one when the real slope is ~0), the share of cells whose slope has the real slope's sign, and the
correlation of model and real slopes across cells (does the model know which instruments respond to velocity).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cell:
    instrument: str
    family: str
    pitch: int
    note_strs: tuple[str, ...]  # one real note per velocity, velocity ascending
    velocities: tuple[int, ...]


def velocity_cells(examples: dict, pitch_range: tuple[int, int], layers) -> list[Cell]:
    """Every (instrument, pitch) of an NSynth ``examples.json`` dict with real notes at >= 2 of the bundle's velocity
    layers, the pitch inside ``pitch_range``; sorted (instrument, pitch)."""
    layer_set = {int(v) for v in layers}
    by_cell: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    family: dict[str, str] = {}
    lo, hi = pitch_range
    for note_str, e in examples.items():
        pitch, vel = int(e["pitch"]), int(e["velocity"])
        if lo <= pitch <= hi and vel in layer_set:
            by_cell[(e["instrument_str"], pitch)][vel] = note_str
            family[e["instrument_str"]] = str(e.get("instrument_family_str", "unknown"))
    cells = []
    for (inst, pitch), by_vel in sorted(by_cell.items()):
        if len(by_vel) >= 2:
            vels = tuple(sorted(by_vel))
            cells.append(Cell(inst, family[inst], pitch, tuple(by_vel[v] for v in vels), vels))
    return cells


def cell_slope(values, velocities) -> float | None:
    """Least-squares slope of ``values`` on velocity / 127 (per 127 velocity); None with < 2 finite values."""
    y = np.asarray(values, np.float64)
    v = np.asarray(velocities, np.float64) / 127.0
    ok = np.isfinite(y)
    if ok.sum() < 2 or len(np.unique(v[ok])) < 2:
        return None
    return float(np.polyfit(v[ok], y[ok], 1)[0])


def _median(x) -> float | None:
    x = np.asarray([a for a in x if a is not None and math.isfinite(a)], np.float64)
    return float(np.median(x)) if len(x) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or abs(b) < 1e-9 else a / b


def summarize(slopes: dict[str, list[float | None]], families: list[str], tolerance: float = 0.3) -> dict:
    """Per family and ``all``: cells, median slope of each condition, ratio to real, same-sign share, correlation.
    ``slopes``: condition -> one slope per cell (``real`` among them)."""
    fam = np.asarray(families)
    models = [k for k in slopes if k != "real"]
    out: dict = {}
    for f in sorted(set(families)) + ["all"]:
        idx = np.ones(len(fam), bool) if f == "all" else fam == f
        real = [s for s, k in zip(slopes["real"], idx) if k]
        row: dict = {"cells": int(idx.sum()), "median": {"real": _median(real)}, "ratio_to_real": {},
                     "median_abs_error": {}, "same_sign_share": {}, "correlation": {}}
        for m in models:
            mine = [s for s, k in zip(slopes[m], idx) if k]
            row["median"][m] = _median(mine)
            row["ratio_to_real"][m] = _ratio(row["median"][m], row["median"]["real"])
            pairs = [(a, b) for a, b in zip(mine, real) if a is not None and b is not None]
            row["median_abs_error"][m] = _median([abs(a - b) for a, b in pairs])
            row["same_sign_share"][m] = (float(np.mean([np.sign(a) == np.sign(b) for a, b in pairs]))
                                         if pairs else None)
            if len(pairs) >= 3:
                a, b = np.asarray(pairs).T
                row["correlation"][m] = (float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None)
            else:
                row["correlation"][m] = None
        out[f] = row
    within = {}
    for m in models:
        r = [out[f]["ratio_to_real"][m] for f in out if f != "all" and out[f]["ratio_to_real"][m] is not None]
        within[m] = {"families": len(r), "within": int(sum(abs(x - 1.0) <= tolerance for x in r)),
                     "share": (float(np.mean([abs(x - 1.0) <= tolerance for x in r])) if r else None)}
    return {"by_family": out, f"families_within_{round(tolerance * 100)}pct": within}


__all__ = ["Cell", "cell_slope", "summarize", "velocity_cells"]
