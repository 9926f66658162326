"""Sound measures (synth.eval.sound) on synthetic notes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synth.eval import sound as S

SR = 24_000


def tone(midi: float, seconds: float = 4.0, attack_s: float = 0.01, off_s: float = 3.0, release_s: float = 0.05,
         amp: float = 0.3, harmonics: int = 8, bright: float = 1.0) -> np.ndarray:
    """Harmonic tone: linear attack, hold, exponential release (time constant ``release_s``) after ``off_s``."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k ** bright for k in range(1, harmonics + 1) if f0 * k < SR / 2)
    env = np.minimum(1.0, t / attack_s) * np.where(t < off_s, 1.0, np.exp(-np.maximum(t - off_s, 0) / release_s))
    return (amp * wave / np.abs(wave).max() * env).astype(np.float32)


def hum(midi: float, dbfs: float, seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (10 ** (dbfs / 20) * math.sqrt(2) * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t)).astype(np.float32)


def test_release_reaches_40db_and_tail_level():
    clean = tone(60)
    hummed = clean + hum(60, -45)
    rel = S.release_measures(np.stack([clean, hummed]), SR)
    assert rel["reaches"].tolist() == [1.0, 0.0]
    assert rel["tail_dbfs"][0] < -100 and abs(rel["tail_dbfs"][1] + 45) < 0.5
    assert rel["swell"].tolist() == [0.0, 0.0]


def test_release_swell_back():
    t = np.arange(4 * SR) / SR
    wave = tone(60, release_s=0.1)
    # after the note-off: falls ~17 dB in 0.2 s, then swells back to -6 dB re the held level and holds
    back = np.where(t > 3.2, 10 ** (-6 / 20), 0.0) * tone(60, off_s=5.0)
    rel = S.release_measures(np.stack([wave, (wave + back).astype(np.float32)]), SR)
    assert rel["swell"].tolist() == [0.0, 1.0]
    assert 8 < rel["swell_db"][1] < 14 and rel["reaches"].tolist() == [1.0, 0.0]


def test_note_off_is_a_parameter_and_short_files_give_nan():
    wave = tone(60, seconds=2.0, off_s=1.0)
    assert S.release_measures(wave[None], SR, S.SoundConfig(note_off_s=1.0))["reaches"][0] == 1.0
    assert np.isnan(S.release_measures(wave[None], SR)["reaches"][0])  # note-off at 3 s: beyond the file


def test_noise_flatness_and_energy_above_6k():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(4 * SR)).astype(np.float32)
    spec = S.spectral_measures(np.stack([tone(60), noise]), SR)
    assert spec["flatness_db"][1] > spec["flatness_db"][0] + 30
    assert abs(spec["flatness_db"][1] - 10 * np.log10(np.exp(-np.euler_gamma))) < 0.3  # white noise: e^-gamma
    assert abs(spec["hf_db"][1] - 10 * np.log10(0.5)) < 0.2  # 6-12 kHz of a flat 0-12 kHz spectrum
    assert spec["hf_db"][0] < -60  # 8 harmonics of C4 end near 2.1 kHz


def test_attack_times_10_and_100_ms():
    att = S.attack_measures(np.stack([tone(69, attack_s=0.01), tone(69, attack_s=0.1), tone(81, attack_s=0.01)]),
                            SR, [69, 69, 81])
    assert att["attack_s"][0] * 1000 == pytest.approx(8.0, abs=0.8)
    assert att["attack_s"][1] * 1000 == pytest.approx(80.0, abs=4.0)
    assert att["attack_s"][2] * 1000 == pytest.approx(8.0, abs=0.8)
    assert att["onset_s"][1] == pytest.approx(0.01, abs=0.002)  # 10% of a 100 ms ramp
    late = np.concatenate([np.zeros(SR // 2, np.float32), tone(69)[: -SR // 2]])
    assert S.attack_measures(late[None], SR, [69])["onset_s"][0] == pytest.approx(0.5, abs=0.003)
    # a click-like strike has more high-frequency energy in its first 30 ms than a slow swell of the same tone
    assert att["hf_db"][0] > att["hf_db"][1] + 5


def test_mfcc_distance_and_timbre_scale():
    notes = np.stack([tone(60, bright=1.0), tone(60, bright=3.0), tone(60, bright=1.0, amp=0.05)])
    m = S.spectral_measures(notes, SR)["mfcc"]
    assert m.shape == (3, 20)
    assert S.timbre_distance(m[0], m[0]) == 0.0
    assert S.timbre_distance(m[0], m[1]) > 10 * S.timbre_distance(m[0], m[2])  # level barely counts, spectrum does
    other = S.nearest_other_instrument(m, ["a", "b", "a"], [60, 60, 60])
    assert other[0] == pytest.approx(S.timbre_distance(m[0], m[1]))
    assert other[2] == pytest.approx(S.timbre_distance(m[2], m[1]))


def test_spread_ratio_self_and_collapsed():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((12, 20))
    inst = [f"i{k % 4}" for k in range(12)]
    real = S.timbre_spread(m, inst)
    assert real["instruments"] == 4
    assert S.timbre_spread(m, inst)["mean_pairwise"] / real["mean_pairwise"] == 1.0
    collapsed = np.repeat(m.mean(0, keepdims=True), 12, axis=0)
    assert S.timbre_spread(collapsed, inst)["mean_pairwise"] / real["mean_pairwise"] == pytest.approx(0.0, abs=1e-9)
    assert S.timbre_spread(collapsed, inst)["trace_cov"] == pytest.approx(0.0, abs=1e-12)


def test_pyin_pitch_at_midi_40_and_80():
    waves = np.stack([tone(40), tone(80), tone(80)])
    f0 = S.median_f0_pyin(waves, SR, [40, 80, 68])
    assert 1200 * abs(math.log2(f0[0] / (440 * 2 ** ((40 - 69) / 12)))) < 20
    assert 1200 * abs(math.log2(f0[1] / (440 * 2 ** ((80 - 69) / 12)))) < 20
    acc = S.pitch_accuracy_pyin(waves, SR, [40, 80, 68])  # the third note is an octave above its target
    assert acc["correct"].tolist() == [True, True, False]


def test_sound_report_keys_and_identity():
    real = np.stack([tone(60, bright=1.0), tone(60, bright=2.5), tone(67, bright=1.0), tone(67, bright=2.5)])
    produced = real + np.stack([hum(p, -45) for p in (60, 60, 67, 67)])
    kw = dict(families=["keyboard", "keyboard", "string", "string"], instruments=["a", "b", "a", "b"],
              pitches=[60, 60, 67, 67], note_off_s=3.0)
    rep = S.sound_report(produced, real, SR, produced_key="roundtrip", **kw)
    assert set(rep) >= {"release", "noise", "attack_by_family", "timbre", "pitch_pyin"}
    assert rep["release"]["real"]["share_reaching_40db"] == 1.0
    assert rep["release"]["roundtrip"]["share_reaching_40db"] == 0.0
    assert rep["release"]["tail_above_-70dbfs_where_real_silent"] == 4
    assert set(rep["attack_by_family"]) == {"keyboard", "string", "all"}
    assert rep["pitch_pyin"]["real"] == 1.0
    same = S.sound_report(real, real, SR, pitch=False, **kw)
    assert "pitch_pyin" not in same
    assert same["timbre"]["distance_to_own_p50"] == 0.0 and same["timbre"]["spread_ratio"] == 1.0
    assert same["timbre"]["share_closer_than_own_nearest_other"] == 1.0
    assert all(v == 0.0 for v in same["noise"]["diff_db"].values())
    assert same["attack_by_family"]["all"]["attack_ratio"] == 1.0
