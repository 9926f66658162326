"""Instrument-disjoint train/valid/test splits, fixed per General MIDI program.

Rule: the unit of the split is the GM program, not the (font, program) instrument. Debian's fonts share samples
(FluidR3 Mono and MuseScore General reuse FluidR3's recordings, csound's bank shares presets with TimGM6mb;
measured: waveform correlation up to 1.0 between fonts for the same program), so splitting instruments font by font
would put the same recording in train and test. Holding out a program in every font at once cannot leak that way.

Within each family the programs are ordered by a salted SHA-1 of the program number; the first
``max(1, round(0.1 n))`` go to test, the next ``max(1, round(0.1 n))`` to valid (none when the family has fewer than
five programs), the rest to train. So every family has test instruments, the split is about 80/10/10, it never
depends on which fonts are installed or what the quality gate dropped, and it is the same on every machine.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from synth.data.families import family_of_program, programs_by_family

SPLITS: tuple[str, ...] = ("train", "valid", "test")
SALT = "pgesam-split-v1"


def _rank_key(program: int) -> str:
    return hashlib.sha1(f"{SALT}:{program}".encode()).hexdigest()


def assign(programs: list[int]) -> dict[int, str]:
    """Split of each program of one family (the rule in the module docstring)."""
    ordered = sorted(programs, key=_rank_key)
    n = len(ordered)
    n_test = max(1, round(0.1 * n)) if n else 0
    n_valid = max(1, round(0.1 * n)) if n >= 5 else 0
    out = {}
    for i, program in enumerate(ordered):
        out[program] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


@lru_cache(maxsize=1)
def program_splits() -> dict[int, str]:
    """Split of every kept GM program."""
    out: dict[int, str] = {}
    for programs in programs_by_family().values():
        out.update(assign(programs))
    return out


def split_of_program(program: int) -> str:
    if family_of_program(program) is None:
        raise ValueError(f"GM program {program} is not a kept instrument")
    return program_splits()[program]
