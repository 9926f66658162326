"""Read note datasets in NSynth's layout: the real NSynth and the SoundFont build of this project.

Layout: ``<root>/nsynth-<split>/examples.json`` (note_str -> fields) and ``<root>/nsynth-<split>/audio/<note_str>.wav``.
The paper's filter (pitch 48-72, velocity 100, at most N instruments per family) is applied here so both datasets
go through the same code. When a family has more instruments than N, the first N by instrument_str in sorted order
are kept: deterministic, and the same choice for every split reader call.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
import json

import numpy as np

from synth.data.families import FAMILIES

SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class NoteExample:
    note_str: str
    instrument_str: str
    family: str
    pitch: int
    velocity: int
    sample_rate: int
    path: Path
    split: str

    @property
    def family_index(self) -> int:
        return FAMILIES.index(self.family)


def split_dir(root: str | Path, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return Path(root) / f"nsynth-{split}"


def _family(fields: dict) -> str:
    family = fields.get("instrument_family_str")
    if family is None:
        family = FAMILIES[int(fields["instrument_family"])]
    if family not in FAMILIES:
        raise ValueError(f"unknown instrument family {family!r} in {fields.get('note_str')}")
    return family


def read_split(root: str | Path, split: str, pitch_range: tuple[int, int] = (48, 72),
               velocities: tuple[int, ...] | None = (100,),
               max_instruments_per_family: int | None = None) -> list[NoteExample]:
    """Notes of one split, filtered, sorted by (instrument_str, pitch, velocity).

    pitch_range is inclusive; ``velocities=None`` keeps every velocity; ``max_instruments_per_family`` keeps the
    first N instruments (sorted by name) of each family.
    """
    folder = split_dir(root, split)
    index = folder / "examples.json"
    if not index.exists():
        raise FileNotFoundError(f"{index} not found: build the dataset (python -m synth dataset build --root {root}) "
                                f"or point --data at a folder holding nsynth-{split}/")
    with open(index) as f:
        examples = json.load(f)
    lo, hi = pitch_range
    out = []
    for note_str, fields in examples.items():
        pitch, velocity = int(fields["pitch"]), int(fields["velocity"])
        if not lo <= pitch <= hi or (velocities is not None and velocity not in velocities):
            continue
        out.append(NoteExample(note_str=note_str, instrument_str=fields["instrument_str"], family=_family(fields),
                               pitch=pitch, velocity=velocity, sample_rate=int(fields.get("sample_rate", 16000)),
                               path=folder / "audio" / f"{note_str}.wav", split=split))
    if max_instruments_per_family is not None:
        out = _limit_instruments(out, max_instruments_per_family)
    return sorted(out, key=lambda e: (e.instrument_str, e.pitch, e.velocity))


def _limit_instruments(examples: list[NoteExample], n: int) -> list[NoteExample]:
    per_family: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        per_family[e.family].add(e.instrument_str)
    allowed = {name for names in per_family.values() for name in sorted(names)[:n]}
    return [e for e in examples if e.instrument_str in allowed]


def load_audio(example: NoteExample, sample_rate: int | None = None) -> np.ndarray:
    """Mono float32 audio of a note, resampled to ``sample_rate`` when it differs from the file's rate."""
    import soundfile as sf

    audio, rate = sf.read(example.path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sample_rate is None or rate == sample_rate:
        return np.ascontiguousarray(audio, dtype=np.float32)
    return resample(audio, rate, sample_rate)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's sinc interpolation)."""
    import torch
    import torchaudio.functional as AF

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return AF.resample(x, rate_in, rate_out).numpy().astype(np.float32, copy=False)
