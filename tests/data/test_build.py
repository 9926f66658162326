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
