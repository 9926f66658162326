"""Rendering a MIDI file made here (two tracks, chords, sustain, pitch bend, tempo change) with the engine's demo
note source (deterministic harmonic tones at exactly the requested pitch) through the real mixer and limiter.

Each note is checked in the audio itself: its fundamental must start at the onset the file says (across the tempo
change), the pedal must hold a released key, the bend must move the pitch, and velocity must scale the level.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile

from synth.engine.sources import SineNoteSource
from synth.midi_file import MidiFileError
from synth.presets import Preset
from synth.render import (NoteBank, ProgramMap, RenderCancelled, apply_overrides, default_program_map,
                          family_for_program, render_midi)
from synth.timbre import Timbre
from tests.test_midi_file import SONG, beat_time, write_song

SR = 48000
PIANO = Preset("piano-ish", Timbre(-0.5, 0.5, attack_ms=2.0, release_ms=200.0))
STRINGS = Preset("strings-ish", Timbre(0.5, -0.5, attack_ms=2.0, release_ms=400.0))


def hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def tone_level(audio: np.ndarray, freq: float, t0: float, t1: float) -> float:
    """Amplitude of one frequency in [t0, t1) (Hann-windowed correlation)."""
    lead = max(0, -int(round(t0 * SR)))  # before the file starts there is silence
    seg = np.concatenate([np.zeros(lead), audio[max(0, int(round(t0 * SR))):int(round(t1 * SR))]])
    t = np.arange(len(seg)) / SR
    window = np.hanning(len(seg))
    return 2.0 * abs(np.sum(seg * window * np.exp(-2j * np.pi * freq * t))) / np.sum(window)


def onset(audio: np.ndarray, freq: float, expected: float, hop: float = 0.002, width: float = 0.1) -> float:
    """Where the tone crosses halfway from its level before ``expected`` to its level after, as the centre of a
    symmetric window (a step at time t is at half level when the window is centred on t)."""
    before = tone_level(audio, freq, expected - 0.02 - width, expected - 0.02)
    after = tone_level(audio, freq, expected + 0.02, expected + 0.02 + width)
    assert after > 3 * before, f"no rise of {freq:.1f} Hz near {expected:.3f} s"
    threshold = before + 0.5 * (after - before)
    t = expected - 0.1 - width / 2
    while t < expected + 0.1:
        if tone_level(audio, freq, t, t + width) >= threshold:
            return t + width / 2
        t += hop
    return math.inf


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("render")
    song = write_song(folder / "song.mid")
    source = SineNoteSource()
    bank = NoteBank(source, SR)
    program_map = ProgramMap(family_timbres={}, overrides={0: PIANO, 40: STRINGS})
    result = render_midi(song, folder / "song.wav", source, program_map, sample_rate=SR, bank=bank)
    audio, rate = soundfile.read(folder / "song.wav", dtype="float32")
    return {"folder": folder, "song": song, "source": source, "bank": bank, "map": program_map, "result": result,
            "audio": audio, "rate": rate}


def test_length_is_the_file_plus_the_longest_release(rendered):
    audio = rendered["audio"]
    assert rendered["rate"] == SR
    assert len(audio) == math.ceil((beat_time(6.5) + STRINGS.timbre.release_ms / 1000.0) * SR)
    assert rendered["result"].notes == len(SONG)
    assert np.max(np.abs(audio[-SR // 100:])) < 1e-3  # every voice has faded by the end


@pytest.mark.parametrize("channel, pitch, velocity, start_beat, end_beat, program", SONG)
def test_each_note_starts_on_time_at_its_pitch(rendered, channel, pitch, velocity, start_beat, end_beat, program):
    audio = rendered["audio"]
    start = beat_time(start_beat)
    found = onset(audio, hz(pitch), start)
    assert abs(found - start) < 0.015, f"pitch {pitch}: onset {found:.3f} s, file says {start:.3f} s"
    level = tone_level(audio, hz(pitch), start + 0.02, start + 0.27)
    assert level > 0.01
    for wrong in (pitch - 1, pitch + 1):  # the right pitch, not a neighbour
        assert tone_level(audio, hz(wrong), start + 0.02, start + 0.27) < 0.2 * level


def test_sustain_pedal_holds_a_released_key(rendered):
    audio = rendered["audio"]
    f = hz(62)  # key up at beat 1.5 (0.75 s), pedal up at beat 2 (1.0 s), release 0.2 s
    held = tone_level(audio, f, 0.90, 0.98)
    assert held > 0.5 * tone_level(audio, f, 0.55, 0.63)
    assert tone_level(audio, f, 1.25, 1.33) < 0.05 * held


def test_pitch_bend_moves_the_pitch(rendered):
    audio = rendered["audio"]
    # G3 (55) is bent up a semitone from beat 3 (1.5 s) until beat 4 (2.0 s)
    before = tone_level(audio, hz(55), 1.2, 1.45), tone_level(audio, hz(56), 1.2, 1.45)
    during = tone_level(audio, hz(55), 1.6, 1.95), tone_level(audio, hz(56), 1.6, 1.95)
    assert before[0] > 5 * before[1]
    assert during[1] > 5 * during[0]


def test_velocity_scales_the_level(rendered):
    audio = rendered["audio"]
    loud, soft = tone_level(audio, hz(60), 0.1, 0.4), tone_level(audio, hz(64), 0.1, 0.4)  # velocities 100 and 90
    assert soft / loud == pytest.approx(0.9, rel=0.08)


def test_programs_choose_timbres_and_notes_are_generated_once(rendered):
    result = rendered["result"]
    assert result.channel_timbres == {0: PIANO.name, 1: STRINGS.name}
    assert result.notes_generated == len({(c, n) for c, n, *_ in SONG})
    assert result.peak_dbfs <= -0.3 + 1e-3


def test_warm_cache_generates_nothing_and_sounds_the_same(rendered):
    again = render_midi(rendered["song"], None, rendered["source"], rendered["map"], sample_rate=SR,
                        bank=rendered["bank"])
    assert again.notes_generated == 0
    np.testing.assert_allclose(again.audio, rendered["result"].audio, atol=2e-7)


def test_cancel_writes_nothing(rendered, tmp_path):
    with pytest.raises(RenderCancelled):
        render_midi(rendered["song"], tmp_path / "x.wav", SineNoteSource(), rendered["map"], sample_rate=SR,
                    cancelled=lambda: True)
    assert not (tmp_path / "x.wav").exists()


def test_corrupt_midi_gives_a_clear_error(tmp_path):
    bad = tmp_path / "corrupt.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x10\x00\x90\x3c")
    with pytest.raises(MidiFileError, match="corrupt.mid"):
        render_midi(bad, tmp_path / "out.wav", SineNoteSource(), sample_rate=SR)
    assert not (tmp_path / "out.wav").exists()


def test_general_midi_families_and_overrides():
    assert family_for_program(0) == "keyboard" and family_for_program(40) == "string"
    assert family_for_program(33) == "bass" and family_for_program(120) == "synth_lead"
    from synth.model.instrument import Instrument

    instruments = [Instrument("a", "string", 1.0, 1.0, "train"), Instrument("b", "string", 3.0, 1.0, "train"),
                   Instrument("c", "string", 9.0, 9.0, "valid"), Instrument("d", "keyboard", -1.0, 0.0, "train")]
    program_map = default_program_map(instruments, presets=[])
    violin = program_map.timbre_for(40)
    assert violin.timbre.point == (2.0, 1.0)  # centroid of the training instruments only
    assert program_map.timbre_for(1).timbre.point == (-1.0, 0.0)
    apply_overrides(program_map, ["40=0.25,-0.5"])
    assert program_map.timbre_for(40).timbre.point == (0.25, -0.5)
    assert program_map.timbre_for(41).timbre.x == 2.0  # only program 40 was overridden
    with pytest.raises(ValueError, match="neither a program"):
        apply_overrides(program_map, ["drums=0,0"])


def test_render_command_line(tmp_path, capsys):
    from synth.cli import main

    song = write_song(tmp_path / "song.mid")
    assert main(["render", str(song), "-o", str(tmp_path / "a.wav"), "--demo", "--quiet", "--json",
                 "--preset", "0.1,0.2"]) == 0
    assert (tmp_path / "a.wav").exists()
    assert main(["render", str(song), "-o", str(tmp_path / "a.wav"), "--demo", "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
    (tmp_path / "bad.mid").write_bytes(b"garbage")
    assert main(["render", str(tmp_path / "bad.mid"), "--demo", "--quiet"]) == 2  # bad input
    assert "bad.mid" in capsys.readouterr().err


def test_render_and_export_through_a_tiny_model_bundle(tmp_path, capsys):
    """The model path end to end: bundle -> Synthesizer -> the engine's ModelNoteSource -> voices -> WAV / SFZ."""
    from synth.cli import main
    from synth.model.bundle import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path / "bundle")
    song = write_song(tmp_path / "song.mid")
    assert main(["render", str(song), "-o", str(tmp_path / "song.wav"), "--bundle", str(bundle), "--quiet",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["notes"] == len(SONG) and summary["notes_generated"] == len(SONG)
    audio, rate = soundfile.read(tmp_path / "song.wav", dtype="float32")
    assert rate == SR and np.all(np.isfinite(audio)) and len(audio) / SR == pytest.approx(summary["duration_s"])
    assert main(["export", "--xy", "0.1", "0.1", "--pitches", "60-62", "-o", str(tmp_path / "pack"), "--bundle",
                 str(bundle), "--quiet"]) == 0
    assert len(list((tmp_path / "pack" / "samples").glob("*.wav"))) == 3
    (sfz_path,) = (tmp_path / "pack").glob("*.sfz")
    sfz = sfz_path.read_text()
    assert sfz.count("loop_mode=loop_continuous") == 3  # loops scale with the model's (short) held part


def test_pitches_outside_the_model_range_play_from_the_nearest_note(tmp_path):
    import mido

    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=48, velocity=100),
                                       mido.Message("note_off", note=48, time=960)]))
    midi.save(tmp_path / "low.mid")
    source = SineNoteSource(pitch_range=(60, 72))
    result = render_midi(tmp_path / "low.mid", None, source, ProgramMap({}, everything=PIANO), sample_rate=SR)
    assert tone_level(result.audio, hz(48), 0.2, 0.8) > 10 * tone_level(result.audio, hz(60), 0.2, 0.8)


# ---------------------------------------------------------------- issue 18: velocity layers


def two_velocities(path, pitch=60, velocities=(40, 127)):
    """One key struck twice, softly then hard (0.5 s each, 1 s apart)."""
    import mido

    midi = mido.MidiFile(type=0, ticks_per_beat=480)  # 120 bpm: 960 ticks = 1 s
    track = mido.MidiTrack()
    for i, velocity in enumerate(velocities):
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=0 if i == 0 else 480))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
    midi.tracks.append(track)
    midi.save(path)
    return path


def centroid_over_f0(audio, f0, t0, t1):
    seg = audio[int(t0 * SR):int(t1 * SR)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    freqs = np.fft.rfftfreq(len(seg), 1.0 / SR)
    return float(np.sum(freqs * spectrum) / np.sum(spectrum) / f0)


def test_each_note_is_generated_and_played_at_its_velocity_layer(tmp_path):
    """Through the `synth render` path: a velocity-conditioned source renders the hard note brighter and louder."""
    source = SineNoteSource(velocity_layers=(40, 70, 100, 127), duration=2.0)
    song = two_velocities(tmp_path / "two.mid")
    result = render_midi(song, None, source, ProgramMap({}, everything=PIANO), sample_rate=SR)
    assert result.notes_generated == 2  # (60, layer 40) and (60, layer 127)
    soft = centroid_over_f0(result.audio, hz(60), 0.05, 0.45)
    hard = centroid_over_f0(result.audio, hz(60), 1.05, 1.45)
    assert hard > 1.3 * soft
    assert tone_level(result.audio, hz(60), 1.05, 1.45) > 2 * tone_level(result.audio, hz(60), 0.05, 0.45)
    # velocities in one layer share its note: 30 and 52 both play layer 40
    again = render_midi(two_velocities(tmp_path / "same.mid", velocities=(30, 52)), None, source,
                        ProgramMap({}, everything=PIANO), sample_rate=SR)
    assert again.notes_generated == 1


def test_one_layer_sources_render_as_before(tmp_path):
    """A source that declares its single layer renders exactly like one that declares nothing (the old bundles):
    one note per pitch whatever the velocities, level from the velocity curve alone."""
    song = two_velocities(tmp_path / "two.mid")
    plain = render_midi(song, None, SineNoteSource(duration=2.0), ProgramMap({}, everything=PIANO), sample_rate=SR)
    single = SineNoteSource(duration=2.0, velocity_layers=(100,))
    declared = render_midi(song, None, single, ProgramMap({}, everything=PIANO), sample_rate=SR)
    assert plain.notes_generated == declared.notes_generated == 1
    np.testing.assert_array_equal(plain.audio, declared.audio)
    ratio = tone_level(plain.audio, hz(60), 1.05, 1.45) / tone_level(plain.audio, hz(60), 0.05, 0.45)
    assert ratio == pytest.approx(127 / 40, rel=0.03)
