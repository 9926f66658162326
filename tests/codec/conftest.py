"""Tiny fixtures for codec tests: a synthetic NSynth-layout dataset of harmonic tones and a tiny codec config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.codec.bundled import CodecConfig

SR = 24_000


def tone(pitch: int, seconds: float, bright: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    env = np.minimum(1.0, t / 0.01) * np.where(t < 0.75 * seconds, 1.0, np.exp(-(t - 0.75 * seconds) * 8))
    wave = sum((0.5 / k ** bright) * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 8) if f0 * k < sr / 2)
    return (0.4 * wave * env).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_notes(tmp_path_factory) -> Path:
    """``<root>/nsynth-{train,valid,test}`` with a few 1 s notes per instrument, 24 kHz."""
    root = tmp_path_factory.mktemp("notes")
    for split, n_inst in (("train", 2), ("valid", 1), ("test", 1)):
        folder = root / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True)
        examples = {}
        for i in range(n_inst):
            for pitch in (48, 55, 60, 67, 72):
                name = f"tone_{split}_{i}-{pitch:03d}-100"
                sf.write(folder / "audio" / f"{name}.wav", tone(pitch, 1.0, 1.0 + i), SR, subtype="PCM_16")
                examples[name] = {"note_str": name, "instrument_str": f"tone_{split}_{i}", "instrument": i,
                                  "instrument_family": 9, "instrument_family_str": "synth_lead",
                                  "instrument_source": 2, "instrument_source_str": "synthetic", "pitch": pitch,
                                  "velocity": 100, "sample_rate": SR, "soundfont": "test", "program": 80 + i}
        (folder / "examples.json").write_text(json.dumps(examples))
    return root


def tiny_config(arch: str = "harmonic") -> CodecConfig:
    return CodecConfig(arch=arch, name=f"tiny-{arch}", dim=16, enc_filters=4, enc_lstm=0, hidden=32, n_blocks=2,
                       n_harmonics=24, n_noise_bands=16, dec_filters=4)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Codec tests run single-threaded (tests/conftest.py says why)."""
    yield
