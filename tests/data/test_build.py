"""A real SoundFont render through the build: 2 programs x 3 pitches of a small installed font."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from synth.data.render import discover_fonts

FONTS = {f.short: f for f in discover_fonts()}
pytestmark = pytest.mark.skipif("timgm6mb" not in FONTS and "fluidr3" not in FONTS,
                                reason="no General MIDI SoundFont installed (apt install timgm6mb-soundfont)")
FONT = "timgm6mb" if "timgm6mb" in FONTS else "fluidr3"
PROGRAMS = [0, 73]  # piano (train), flute (valid)
PITCHES = (57, 60, 64)


def _build(root):
    from synth.data.build import BuildConfig, build
    from synth.data.render import RenderConfig

    cfg = BuildConfig(root=root, fonts=[FONT], programs=PROGRAMS, pitches=PITCHES,
                      render=RenderConfig(duration=1.5, held=1.3), progress=False)
    return build(cfg)


def _assert_pitch(audio, rate, target):
    """Right pitch by FFT: the strongest partial is a harmonic of the target, the target's own partial is strong,
    and there is no partial at half the target (which would mean the note sounds an octave low)."""
    part = audio[int(0.2 * rate): int(1.2 * rate)] * np.hanning(int(1.0 * rate))
    spectrum = np.abs(np.fft.rfft(part))  # 1 Hz bins

    def level(hz):
        return spectrum[int(hz * 0.97): int(hz * 1.03) + 2].max()

    peak_hz = 60 + int(np.argmax(spectrum[60:]))
    ratio = peak_hz / target
    assert abs(ratio - round(ratio)) < 0.03 and 1 <= round(ratio) <= 4, (peak_hz, target)
    assert level(target) > 0.1 * spectrum.max()
    assert level(target / 2) < 0.1 * spectrum.max()


def test_build_renders_gates_writes_and_reruns_incrementally(tmp_path):
    report = _build(tmp_path)
    assert report["instruments_kept"] == 2, report["dropped"]
    assert report["notes_kept"]["train"] == 3 and report["notes_kept"]["valid"] == 3
    for split, program in (("train", 0), ("valid", 73)):
        examples = json.loads((tmp_path / f"nsynth-{split}" / "examples.json").read_text())
        assert len(examples) == 3
        for note, fields in examples.items():
            assert fields["program"] == program and fields["soundfont"] == FONT and fields["sample_rate"] == 24000
            assert note == f"{fields['instrument_str']}-{fields['pitch']:03d}-100"
            audio, rate = sf.read(tmp_path / f"nsynth-{split}" / "audio" / f"{note}.wav", dtype="float32")
            assert rate == 24000 and audio.ndim == 1 and len(audio) == int(1.5 * 24000)
            assert np.sqrt(np.mean(audio[: int(1.3 * rate)] ** 2)) > 1e-3
            assert np.abs(audio).max() <= 0.99 + 1e-3
            target = 440 * 2 ** ((fields["pitch"] - 69) / 12)
            _assert_pitch(audio, rate, target)
    assert json.loads((tmp_path / "nsynth-test" / "examples.json").read_text()) == {}
    assert (tmp_path / "build_report.json").exists()

    again = _build(tmp_path)
    assert again["timings_s"]["notes_gated"] == 0
    assert again["timings_s"]["notes_rendered"] == 2  # only the duplicate-check probes
    assert again["notes_kept"] == report["notes_kept"]


@pytest.mark.skipif("timgm6mb" not in FONTS, reason="needs timgm6mb-soundfont")
def test_duplicate_fonts_and_cross_split_sample_sharing_are_dropped(tmp_path):
    """A copy of a font renders sample-identical presets (dropped as duplicates before the tracker runs); TimGM6mb's
    bright piano (valid) reuses its grand piano's sample (train), so it is held out of the dataset entirely."""
    import shutil

    from synth.data.build import BuildConfig, build
    from synth.data.render import RenderConfig

    copy = tmp_path / "copy_of_tim.sf2"
    shutil.copy(FONTS["timgm6mb"].path, copy)
    cfg = BuildConfig(root=tmp_path / "notes", fonts=["timgm6mb", str(copy)], programs=[0, 1], pitches=(60, 62),
                      render=RenderConfig(duration=1.5, held=1.3), progress=False)
    report = build(cfg)
    assert report["dropped"]["copyoftim_000_acoustic_grand_piano"]["reason"] == "duplicate"
    assert report["dropped"]["timgm6mb_001_bright_acoustic_piano"]["reason"] == "shares_sample_with_train"
    assert report["instruments_kept"] == 1 and report["timings_s"]["notes_gated"] == 4
    assert not (tmp_path / "notes" / "nsynth-valid" / "audio").exists() or not any(
        (tmp_path / "notes" / "nsynth-valid" / "audio").iterdir())


def test_wide_grid_samples_keys_and_layers_per_instrument_and_covers_them_across_instruments():
    from pathlib import Path

    from synth.data.build import BuildConfig, WideGrid, note_grid

    cfg = BuildConfig(root=Path("unused"), wide=WideGrid())
    names = [f"font{i}_{p:03d}_x" for i in range(4) for p in range(100)]
    grids = {n: note_grid(n, cfg) for n in names}
    for grid in grids.values():
        core = [(p, v) for p, v, c in grid if c]
        assert core == [(p, 100) for p in range(48, 73)]  # the paper's grid first, unchanged
        assert len(grid) == len(set((p, v) for p, v, _ in grid)) and 60 <= len(grid) <= 75
        assert all(21 <= p <= 108 and v in (40, 70, 100, 127) for p, v, _ in grid)
    covered = {(p, v) for g in grids.values() for p, v, _ in g}
    assert {(p, 100) for p in range(21, 109)} <= covered  # every key at the core layer
    for vel in (40, 70, 127):  # and every key at every other layer, by some instrument
        assert {p for p, v in covered if v == vel} == set(range(21, 109))
    assert note_grid(names[0], cfg) == grids[names[0]]  # stable across calls (and processes: crc32, not hash())


def test_wide_build_keeps_in_tune_notes_outside_the_core(tmp_path):
    from synth.data.build import BuildConfig, WideGrid, build
    from synth.data.render import RenderConfig

    cfg = BuildConfig(root=tmp_path, fonts=[FONT], programs=[0], pitches=(60, 62),
                      wide=WideGrid(key_range=(57, 66), range_stride=3, layers=(40, 100), layer_stride=5),
                      render=RenderConfig(duration=1.5, held=1.3), progress=False)
    report = build(cfg)
    examples = json.loads((tmp_path / "nsynth-train" / "examples.json").read_text())
    velocities = {e["velocity"] for e in examples.values()}
    pitches = {e["pitch"] for e in examples.values()}
    assert velocities == {40, 100} and pitches - {60, 62}, examples.keys()
    assert report["coverage"]["train_notes_by_velocity"][40] == sum(e["velocity"] == 40 for e in examples.values())
    for note, fields in examples.items():
        assert note == f"{fields['instrument_str']}-{fields['pitch']:03d}-{fields['velocity']:03d}"
