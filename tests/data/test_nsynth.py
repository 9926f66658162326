"""The NSynth-layout reader on a small fixture written like the real NSynth (16 kHz, int family labels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from synth.data.nsynth import NoteExample, load_audio, read_split

NSYNTH_FAMILIES = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead",
                   "vocal"]


def _write_split(root, split, instruments, pitches=(47, 48, 60, 72, 73), velocities=(25, 100)):
    folder = root / f"nsynth-{split}"
    (folder / "audio").mkdir(parents=True)
    examples = {}
    for inst_id, (name, family) in enumerate(instruments):
        for pitch in pitches:
            for velocity in velocities:
                note = f"{name}-{pitch:03d}-{velocity:03d}"
                t = np.arange(16000) / 16000
                sf.write(folder / "audio" / f"{note}.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 16000, subtype="PCM_16")
                examples[note] = {  # the real NSynth's fields (no soundfont/program)
                    "note": len(examples), "note_str": note, "instrument": inst_id, "instrument_str": name,
                    "instrument_family": NSYNTH_FAMILIES.index(family), "instrument_family_str": family,
                    "instrument_source": 0, "instrument_source_str": "acoustic", "pitch": pitch,
                    "velocity": velocity, "sample_rate": 16000, "qualities": [0] * 10, "qualities_str": [],
                }
    (folder / "examples.json").write_text(json.dumps(examples))


@pytest.fixture
def nsynth_root(tmp_path):
    _write_split(tmp_path, "train", [("guitar_acoustic_010", "guitar"), ("guitar_acoustic_001", "guitar"),
                                     ("guitar_electronic_005", "guitar"), ("synth_lead_synthetic_000", "synth_lead")])
    _write_split(tmp_path, "valid", [("keyboard_acoustic_004", "keyboard")])
    return tmp_path


def test_paper_filter_pitch_and_velocity(nsynth_root):
    notes = read_split(nsynth_root, "train")
    assert {n.pitch for n in notes} == {48, 60, 72}
    assert {n.velocity for n in notes} == {100}
    assert len(notes) == 4 * 3
    assert all(isinstance(n, NoteExample) and n.split == "train" and n.path.exists() for n in notes)
    assert notes == sorted(notes, key=lambda n: (n.instrument_str, n.pitch))
    assert {n.family for n in notes} == {"guitar", "synth_lead"}


def test_all_velocities_and_wider_range(nsynth_root):
    notes = read_split(nsynth_root, "train", pitch_range=(0, 127), velocities=None)
    assert len(notes) == 4 * 5 * 2


def test_max_instruments_per_family_is_deterministic(nsynth_root):
    notes = read_split(nsynth_root, "train", max_instruments_per_family=2)
    names = sorted({n.instrument_str for n in notes})
    assert names == ["guitar_acoustic_001", "guitar_acoustic_010", "synth_lead_synthetic_000"]
    assert read_split(nsynth_root, "train", max_instruments_per_family=2) == notes


def test_other_split_and_missing_split(nsynth_root):
    assert {n.instrument_str for n in read_split(nsynth_root, "valid")} == {"keyboard_acoustic_004"}
    with pytest.raises(FileNotFoundError, match="dataset build"):
        read_split(nsynth_root, "test")
    with pytest.raises(ValueError):
        read_split(nsynth_root, "dev")


def test_load_audio_resamples(nsynth_root):
    note = read_split(nsynth_root, "valid")[0]
    raw = load_audio(note)
    assert raw.dtype == np.float32 and raw.shape == (16000,)
    up = load_audio(note, 24000)
    assert up.dtype == np.float32 and abs(len(up) - 24000) <= 1
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 24000 / len(up) - 440) < 3
