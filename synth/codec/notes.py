"""Reading dataset notes for the codec stages, through ``synth.data.nsynth`` when it is there.

Why a fallback: the codec code and tests must run against the NSynth layout (``<root>/nsynth-<split>/examples.json``
+ ``audio/<note_str>.wav``) even in a checkout where the dataset package is not importable; the fallback reads just
the fields the codec needs and is used only then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Note:
    note_str: str
    instrument_str: str
    family: str
    pitch: int
    velocity: int
    sample_rate: int
    path: Path
    split: str


def read_notes(root: str | Path, split: str, pitch_range: tuple[int, int] = (0, 127)) -> list:
    """Notes of one split, sorted by note_str (stable row order for caches). Uses ``synth.data.nsynth`` if present."""
    try:
        from synth.data.nsynth import read_split
    except ImportError:
        read_split = None
    if read_split is not None:
        try:
            notes = read_split(root, split, pitch_range=pitch_range, velocities=(100,))
        except TypeError:
            notes = read_split(root, split)
        return sorted(notes, key=lambda n: n.note_str)
    folder = Path(root) / f"nsynth-{split}"
    meta_path = folder / "examples.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no {meta_path}: build the dataset first (python -m synth dataset build)")
    data = json.loads(meta_path.read_text())
    notes = []
    for key, ex in data.items():
        if not pitch_range[0] <= int(ex["pitch"]) <= pitch_range[1]:
            continue
        notes.append(Note(note_str=ex.get("note_str", key), instrument_str=ex["instrument_str"],
                          family=ex.get("instrument_family_str", ""), pitch=int(ex["pitch"]),
                          velocity=int(ex.get("velocity", 100)), sample_rate=int(ex.get("sample_rate", 16000)),
                          path=folder / "audio" / f"{ex.get('note_str', key)}.wav", split=split))
    return sorted(notes, key=lambda n: n.note_str)


def load_note_audio(note, sample_rate: int, num_samples: int | None = None) -> np.ndarray:
    """Mono float32 at ``sample_rate``, cropped or zero-padded to ``num_samples`` when given."""
    wave = None
    try:
        from synth.data.nsynth import load_audio
    except ImportError:
        load_audio = None
    if load_audio is not None:
        wave = np.asarray(load_audio(note, sample_rate), dtype=np.float32)
    else:
        import soundfile as sf

        wave, sr = sf.read(str(note.path), dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
        if sr != sample_rate:
            import torch
            import torchaudio.functional as AF

            wave = AF.resample(torch.from_numpy(wave), sr, sample_rate).numpy()
    if num_samples is not None:
        if len(wave) >= num_samples:
            wave = wave[:num_samples]
        else:
            wave = np.pad(wave, (0, num_samples - len(wave)))
    return np.ascontiguousarray(wave, dtype=np.float32)


def note_meta(note) -> dict:
    """The per-row metadata stored beside embeddings."""
    family = getattr(note, "family", None) or getattr(note, "instrument_family_str", "")
    return {"note_str": note.note_str, "instrument_str": note.instrument_str, "family": family,
            "pitch": int(note.pitch)}
