"""Exporting a timbre as WAV files and an SFZ instrument, read back with a small SFZ parser written here.

The notes come from the engine's demo source (deterministic harmonic tones); the export path is the real one:
the engine's note preparation (resampling, sustain loop), 24-bit/float WAV, atomic writes, overwrite refusal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synth.engine.sources import SineNoteSource
from synth.export import ExportCancelled, ExportError, ExportRequest, export_notes, key_ranges, parse_pitches
from synth.timbre import Timbre

PITCHES = (48, 52, 55, 60)


def parse_sfz(text: str) -> list[dict[str, str]]:
    """Regions of an SFZ file with the opcodes of their <global>/<group>/<control> headers merged in.

    Enough SFZ for the files we write and for hand-written ones: comments (// to end of line), headers in angle
    brackets, opcode=value pairs (values without spaces, except sample= which runs to the next opcode).
    """
    text = re.sub(r"//[^\n]*", "", text)
    tokens = re.findall(r"<\w+>|[A-Za-z_][A-Za-z0-9_]*=(?:[^=<\n]*?)(?=\s+[A-Za-z_][A-Za-z0-9_]*=|\s*<|\s*$)",
                        text, flags=re.M)
    inherited: dict[str, dict[str, str]] = {"control": {}, "global": {}, "group": {}}
    regions: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for token in tokens:
        if token.startswith("<"):
            header = token[1:-1]
            if header == "region":
                current = {**inherited["control"], **inherited["global"], **inherited["group"]}
                regions.append(current)
            elif header in inherited:
                inherited[header] = {}
                current = inherited[header]
                if header == "global":
                    inherited["group"] = {}
            else:
                raise AssertionError(f"unknown SFZ header {token}")
        else:
            key, _, value = token.partition("=")
            assert current is not None, f"opcode {token!r} outside any header"
            current[key] = value.strip()
    return regions


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "pack"
    request = ExportRequest(Timbre(0.3, -0.2, gain_db=-6.0, release_ms=400.0), out_dir=out, pitches=PITCHES,
                            name="Test Tone")
    result = export_notes(SineNoteSource(), request)
    return request, result


def test_sfz_regions_point_at_existing_samples_with_the_right_key_centres(pack):
    request, result = pack
    regions = parse_sfz(result.sfz_path.read_text())
    assert [int(r["pitch_keycenter"]) for r in regions] == list(PITCHES)
    covered = []
    for region in regions:
        sample = result.sfz_path.parent / region["sample"]
        assert sample.is_file(), sample
        info = soundfile.info(sample)
        assert info.samplerate == 48000 and info.subtype == "PCM_24" and info.channels == 1
        assert int(region["lokey"]) <= int(region["pitch_keycenter"]) <= int(region["hikey"])
        covered.extend(range(int(region["lokey"]), int(region["hikey"]) + 1))
        assert region["loop_mode"] == "loop_continuous"
        assert 0 < int(region["loop_start"]) < int(region["loop_end"]) < info.frames
        assert float(region["ampeg_release"]) == pytest.approx(0.4)
        assert float(region["amp_velcurve_127"]) == 1.0  # linear velocity, as the live default curve
    assert covered == list(range(PITCHES[0] - 12, PITCHES[-1] + 13))  # every key once, no gaps, no overlaps


def test_samples_sound_at_their_pitch_with_tail_and_documented_level(pack):
    request, result = pack
    source = SineNoteSource()
    for note in result.notes:
        audio, rate = soundfile.read(note.path, dtype="float64")
        assert len(audio) == int(source.duration * rate)  # the whole note: release tail kept
        held = audio[int(0.5 * rate):int(1.5 * rate)]
        spectrum = np.abs(np.fft.rfft(held * np.hanning(len(held))))
        f0 = np.argmax(spectrum) * rate / len(held)
        assert f0 == pytest.approx(440.0 * 2 ** ((note.pitch - 69) / 12), rel=0.01)
        raw = source.generate(request.timbre.point, [note.pitch])[0]
        # loudness: raw model level times the master gain, no normalization (24-bit quantization aside)
        assert np.max(np.abs(audio)) == pytest.approx(np.max(np.abs(raw)) * 10 ** (-6 / 20), rel=0.02)
        assert note.peak_dbfs == pytest.approx(20 * np.log10(np.max(np.abs(audio))), abs=0.05)
    manifest = json.loads((result.out_dir / "Test_Tone.export.json").read_text())
    assert manifest["gain_db"] == -6.0 and [n["pitch"] for n in manifest["notes"]] == list(PITCHES)


def test_refuses_to_overwrite_without_force(pack, tmp_path):
    request, result = pack
    before = {p: p.stat().st_mtime_ns for p in result.out_dir.rglob("*")}
    with pytest.raises(ExportError, match="--force"):
        export_notes(SineNoteSource(), request)
    assert {p: p.stat().st_mtime_ns for p in result.out_dir.rglob("*")} == before
    assert not list(result.out_dir.parent.glob(".pack.partial-*"))


def test_force_replaces_only_our_files(tmp_path):
    out = tmp_path / "pack"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    request = ExportRequest(Timbre(0.0, 0.0), out_dir=out, pitches=(60,), format="wav", name="n")
    export_notes(SineNoteSource(), request)
    with pytest.raises(ExportError):
        export_notes(SineNoteSource(), request)
    export_notes(SineNoteSource(), ExportRequest(**{**request.__dict__, "force": True, "sample_format": "float"}))
    assert (out / "mine.txt").read_text() == "keep me"
    assert soundfile.info(out / "n_060_C4.wav").subtype == "FLOAT"
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "n.export.json", "n_060_C4.wav"]


def test_cancel_leaves_nothing_behind(tmp_path):
    request = ExportRequest(Timbre(0.0, 0.0), out_dir=tmp_path / "pack", pitches=(60, 61))
    with pytest.raises(ExportCancelled):
        export_notes(SineNoteSource(), request, cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_pitch_lists_and_key_ranges():
    assert parse_pitches("48-50") == (48, 49, 50)
    assert parse_pitches("60, 48,50-51") == (48, 50, 51, 60)
    for bad in ("", "72-48", "a-b", "128"):
        with pytest.raises(ExportError):
            parse_pitches(bad)
    assert key_ranges([60]) == {60: (48, 72)}
    assert key_ranges([48, 55]) == {48: (36, 51), 55: (52, 67)}


def test_export_command_line(tmp_path, capsys):
    from synth.cli import main

    out = tmp_path / "cli"
    args = ["export", "--xy", "0.2", "-0.4", "--pitches", "60-61", "--format", "sfz", "-o", str(out), "--demo",
            "--quiet", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["notes"] == 2 and Path(summary["sfz"]).is_file()
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert main(["export", "--preset", "no such preset", "-o", str(tmp_path / "x"), "--demo", "--quiet"]) == 2
    assert "no preset named" in capsys.readouterr().err


# ---------------------------------------------------------------- issue 18: exact pitches, velocity layers


class ClampingSource(SineNoteSource):
    """Generates only its ``pitch_range`` and clamps other pitches into it, as the model's Synthesizer does: asked
    for MIDI 84 with a 48-72 range it returns MIDI 72 (the mislabelled files of issue 18)."""

    def generate(self, xy, pitches, velocity=100):
        low, high = self.pitch_range
        return super().generate(xy, [min(max(int(p), low), high) for p in pitches], velocity)


def test_every_exported_file_sounds_at_the_pitch_its_name_says(tmp_path):
    """FFT of every written file: outside the model's range the note is re-pitched from the nearest generated one
    (and the export says so), inside it is the model's own note."""
    from synth.export import note_name
    from tests.jackbus import cents, dominant_tone, midi_to_hz

    source = ClampingSource(pitch_range=(48, 72))
    pitches = (24, 36, 47, 48, 60, 72, 73, 84, 96, 108)
    request = ExportRequest(Timbre(-0.8, 0.3), out_dir=tmp_path / "wav", pitches=pitches, format="wav", name="exact")
    result = export_notes(source, request)
    assert [n.pitch for n in result.notes] == list(pitches)
    assert result.repitched == {24: 48, 36: 48, 47: 48, 73: 72, 84: 72, 96: 72, 108: 72}
    assert result.warnings and "re-pitched" in result.warnings[0] and "C7" in result.warnings[0]
    manifest = json.loads((tmp_path / "wav" / "exact.export.json").read_text())
    assert {n["pitch"]: n["repitched_from"] for n in manifest["notes"]} == {p: result.repitched.get(p)
                                                                            for p in pitches}
    for note in result.notes:
        assert note.path.name == f"exact_{note.pitch:03d}_{note_name(note.pitch)}.wav"
        audio, rate = soundfile.read(note.path, dtype="float64")
        held_s = 3.0 * (2.0 ** ((result.repitched.get(note.pitch, note.pitch) - note.pitch) / 12.0))
        held = audio[int(0.2 * held_s * rate):int(0.8 * held_s * rate)]
        tone = dominant_tone(held, rate)
        assert abs(cents(tone.frequency, midi_to_hz(note.pitch))) < 10, (note.path.name, tone.frequency)
        # the whole (re-pitched) note: a note two octaves up lasts a quarter as long, its release tail included
        assert len(audio) == pytest.approx(4.0 * held_s / 3.0 * rate, abs=rate * 0.01)
        if note.loop is not None:
            assert 0 < note.loop[0] < note.loop[1] < held_s * rate


def test_export_command_line_warns_about_repitched_notes_and_defaults_to_the_source_range(tmp_path, capsys,
                                                                                          monkeypatch):
    import synth.render
    from synth.cli import main

    source = ClampingSource(pitch_range=(60, 63), duration=1.0)
    monkeypatch.setattr(synth.render, "open_source",
                        lambda bundle=None, demo=False: synth.render.OpenedSource(source, None, "clamping test"))
    assert main(["export", "--xy", "0", "0", "--pitches", "58-60", "--format", "wav", "-o", str(tmp_path / "a"),
                 "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    assert "re-pitched" in captured.err and "58 (As3) from 60 (C4)" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["repitched"] == {"58": 60, "59": 60}
    assert main(["export", "--xy", "0", "0", "--format", "wav", "-o", str(tmp_path / "b"), "--name", "n",
                 "--quiet"]) == 0
    assert sorted(int(p.name.split("_")[1]) for p in (tmp_path / "b").glob("*.wav")) == [60, 61, 62, 63]
    assert "re-pitched" not in capsys.readouterr().err


def test_export_generates_the_timbre_of_the_requested_velocity(tmp_path):
    source = SineNoteSource(velocity_layers=(40, 70, 100, 127), duration=1.0)
    spectra = {}
    for velocity in (40, 127):
        request = ExportRequest(Timbre(0.0, 0.0), out_dir=tmp_path / f"v{velocity}", pitches=(60,), format="wav",
                                velocity=velocity, name="v")
        (note,) = export_notes(source, request).notes
        audio, rate = soundfile.read(note.path, dtype="float64")
        held = audio[int(0.1 * rate):int(0.6 * rate)]
        spectrum = np.abs(np.fft.rfft(held * np.hanning(len(held))))
        freqs = np.fft.rfftfreq(len(held), 1.0 / rate)
        spectra[velocity] = (float(np.sum(freqs * spectrum) / np.sum(spectrum)), float(np.max(np.abs(held))))
        manifest = json.loads((tmp_path / f"v{velocity}" / "v.export.json").read_text())
        assert manifest["velocity"] == velocity and manifest["velocity_layer"] == velocity
    assert spectra[127][0] > 1.3 * spectra[40][0] and spectra[127][1] > spectra[40][1]
