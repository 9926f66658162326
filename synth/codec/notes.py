"""Dataset notes for the codec stages: a thin layer over ``synth.data.nsynth`` (stable order, fixed length)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.data.nsynth import NoteExample, load_audio, read_split


def read_notes(root: str | Path, split: str, pitch_range: tuple[int, int] = (0, 127),
               velocities: tuple[int, ...] | None = None) -> list[NoteExample]:
    """Notes of one split (every velocity layer unless ``velocities`` is given), sorted by note_str: a stable row
    order for caches."""
    notes = read_split(root, split, pitch_range=pitch_range, velocities=velocities)
    return sorted(notes, key=lambda n: n.note_str)


def load_note_audio(note: NoteExample, sample_rate: int, num_samples: int | None = None) -> np.ndarray:
    """Mono float32 at ``sample_rate``, cropped or zero-padded to ``num_samples`` when given."""
    wave = np.asarray(load_audio(note, sample_rate), dtype=np.float32)
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
            "pitch": int(note.pitch), "velocity": int(getattr(note, "velocity", 100))}
