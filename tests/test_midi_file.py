"""MIDI files to a timeline in seconds: tempo changes, chords, sustain, pitch bend, drums, broken files.

``write_song`` builds the two-track test song used here and by the render tests; ``SONG_NOTES`` is what a correct
reader must find in it (times in seconds worked out by hand from the tempo map).
"""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from synth.midi_file import NOTE_ON, PITCH_BEND, PROGRAM, SUSTAIN, MidiFileError, read_midi

TPB = 480
# Tempo: 120 bpm (0.5 s/beat) for beats 0-4, then 60 bpm (1 s/beat): beat b is at b/2 s before beat 4, b-2 s after.


def beat_time(beat: float) -> float:
    return beat * 0.5 if beat <= 4 else 2.0 + (beat - 4.0)


# (channel, pitch, velocity, start beat, end beat, program)
SONG = [
    (0, 60, 100, 0.0, 1.0, 0),  # C major chord, piano
    (0, 64, 90, 0.0, 1.0, 0),
    (0, 67, 80, 0.0, 1.0, 0),
    (0, 62, 100, 1.0, 1.5, 0),  # held by the sustain pedal from beat 1 to beat 2
    (1, 55, 110, 2.0, 4.0, 40),  # violin, bent up one semitone at beat 3
    (1, 57, 100, 5.0, 6.0, 40),  # after the tempo change: starts at 3.0 s
    (0, 65, 70, 4.5, 5.5, 0),  # F and A as a chord across the tempo change
    (0, 69, 70, 4.5, 5.5, 0),
]
SUSTAIN_BEATS = (1.0, 2.0)
BEND_BEAT = 3.0
BEND_VALUE = 4096  # +1 semitone with the default +-2 range
SONG_END_BEAT = 6.5


def _to_track(timed: list[tuple[float, mido.Message]]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for beat, msg in sorted(timed, key=lambda item: item[0]):
        tick = round(beat * TPB)
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def write_song(path: Path, drums: bool = True) -> Path:
    """Two instrument tracks (plus drums on channel 10) and a tempo track, as a type 1 file."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo = [(0.0, mido.MetaMessage("set_tempo", tempo=500000)), (4.0, mido.MetaMessage("set_tempo", tempo=1000000)),
             (SONG_END_BEAT, mido.MetaMessage("end_of_track"))]
    midi.tracks.append(_to_track(tempo))
    for channel in (0, 1):
        timed: list[tuple[float, mido.Message]] = []
        program = next(p for c, *_, p in SONG if c == channel)
        timed.append((0.0, mido.Message("program_change", channel=channel, program=program)))
        for c, pitch, velocity, start, end, _ in SONG:
            if c == channel:
                timed.append((start, mido.Message("note_on", channel=c, note=pitch, velocity=velocity)))
                timed.append((end, mido.Message("note_off", channel=c, note=pitch, velocity=0)))
        if channel == 0:
            timed.append((SUSTAIN_BEATS[0], mido.Message("control_change", channel=0, control=64, value=127)))
            timed.append((SUSTAIN_BEATS[1], mido.Message("control_change", channel=0, control=64, value=0)))
        else:
            timed.append((BEND_BEAT, mido.Message("pitchwheel", channel=1, pitch=BEND_VALUE)))
            timed.append((4.0, mido.Message("pitchwheel", channel=1, pitch=0)))
        midi.tracks.append(_to_track(timed))
    if drums:
        midi.tracks.append(_to_track([(0.0, mido.Message("note_on", channel=9, note=36, velocity=100)),
                                      (0.5, mido.Message("note_off", channel=9, note=36))]))
    midi.save(path)
    return path


def expected_notes() -> list[tuple[int, int, float, float]]:
    """(channel, pitch, start s, end s) sorted like ``MidiTimeline.notes()``."""
    rows = [(c, p, beat_time(s), beat_time(e)) for c, p, _, s, e, _ in SONG]
    return sorted(rows, key=lambda r: (r[2], r[0], r[1]))


def test_notes_land_at_the_right_times_across_a_tempo_change(tmp_path):
    timeline = read_midi(write_song(tmp_path / "song.mid"))
    notes = timeline.notes()
    got = [(n.channel, n.pitch, n.start, n.end) for n in notes]
    want = expected_notes()
    assert [(c, p) for c, p, *_ in got] == [(c, p) for c, p, *_ in want]
    for (_, _, start, end), (_, _, want_start, want_end) in zip(got, want):
        assert start == pytest.approx(want_start, abs=1e-6)
        assert end == pytest.approx(want_end, abs=1e-6)
    assert timeline.duration == pytest.approx(beat_time(SONG_END_BEAT), abs=1e-6)


def test_velocity_program_sustain_and_bend(tmp_path):
    timeline = read_midi(write_song(tmp_path / "song.mid"))
    notes = {(n.channel, n.pitch): n for n in timeline.notes()}
    assert notes[(0, 64)].velocity == 90
    assert notes[(1, 55)].program == 40 and notes[(0, 60)].program == 0
    sustain = [(e.time, e.value) for e in timeline.events if e.kind == SUSTAIN]
    assert sustain == [(pytest.approx(0.5), 1.0), (pytest.approx(1.0), 0.0)]
    bends = [(e.time, e.value) for e in timeline.events if e.kind == PITCH_BEND]
    assert bends[0] == (pytest.approx(1.5), pytest.approx(1.0))
    assert [e.value for e in timeline.events if e.kind == PROGRAM] == [0.0, 40.0]


def test_drum_channel_is_skipped(tmp_path):
    timeline = read_midi(write_song(tmp_path / "song.mid"))
    assert 9 not in timeline.channels()
    assert timeline.skipped_drum_notes == 1


def test_rpn_zero_sets_the_bend_range(tmp_path):
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    track = mido.MidiTrack()
    for control, value in ((101, 0), (100, 0), (6, 12), (38, 0)):
        track.append(mido.Message("control_change", channel=2, control=control, value=value))
    track.append(mido.Message("note_on", channel=2, note=60, velocity=100))
    track.append(mido.Message("pitchwheel", channel=2, pitch=-8192, time=10))
    track.append(mido.Message("note_off", channel=2, note=60, time=10))
    midi.tracks.append(track)
    midi.save(tmp_path / "rpn.mid")
    bends = [e.value for e in read_midi(tmp_path / "rpn.mid").events if e.kind == PITCH_BEND]
    assert bends == [pytest.approx(-12.0)]


def test_note_on_with_velocity_zero_ends_the_note(tmp_path):
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=64),
                                       mido.Message("note_on", note=60, velocity=0, time=TPB)]))
    midi.save(tmp_path / "v0.mid")
    (note,) = read_midi(tmp_path / "v0.mid").notes()
    assert note.end == pytest.approx(0.5)
    assert sum(e.kind == NOTE_ON for e in read_midi(tmp_path / "v0.mid").events) == 1


TRUNCATED = b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x01\x00\x90"


@pytest.mark.parametrize("content", [b"", b"not a midi file at all", TRUNCATED])
def test_corrupt_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.mid"
    path.write_bytes(content)
    with pytest.raises(MidiFileError, match="broken.mid"):
        read_midi(path)


def test_missing_file_and_type_2(tmp_path):
    with pytest.raises(MidiFileError, match="no such MIDI file"):
        read_midi(tmp_path / "absent.mid")
    midi = mido.MidiFile(type=2)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60)]))
    midi.save(tmp_path / "t2.mid")
    with pytest.raises(MidiFileError, match="type 2"):
        read_midi(tmp_path / "t2.mid")
