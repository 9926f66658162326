"""The engine on the real bus: a virtual keyboard plays into the engine's JACK MIDI port, sounddevice plays the
engine through JACK, a JACK recorder captures it. The note source is ``SineNoteSource`` (real decaying harmonic
tones, deterministic), so these tests need no model.

One engine serves the whole module (starting one costs ~1-2 s of JACK activation and generation); each test ends
with a panic so the next one starts from silence.
"""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from tests.conftest import unique_name
from tests.jackbus import Recorder, cents, dominant_tone, jack_output_device, midi_to_hz, new_output_ports, output_ports

pytestmark = pytest.mark.jack

SETTLE = 0.3


@pytest.fixture(scope="module", params=[False, True], ids=["in_process", "audio_host"])
def bus(jack_server, request):
    """The engine with its callback in this process, then with the audio host (synth.engine.audio_host): every
    test below must pass both ways."""
    from synth.engine.engine import Engine
    from synth.engine.sources import SineNoteSource

    rec = Recorder(name=unique_name("engrec"))
    before = output_ports()
    engine = Engine(SineNoteSource(pitch_range=(48, 84)), sample_rate=48000, block_size=1024,
                    device=jack_output_device(), midi_client=unique_name("pgesam"), use_grid=False,
                    audio_process=request.param)
    try:
        engine.start()
        rec.connect_from(*new_output_ports(before)[:2])
        deadline = time.monotonic() + 30
        while engine.cache_progress()[0] < engine.cache_progress()[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.cache_progress()[0] == engine.cache_progress()[1], engine.meters()
        rec.start()
        time.sleep(SETTLE)
        yield engine, rec
    finally:
        rec.close()
        engine.stop()


@pytest.fixture
def played(bus, keyboard):
    engine, rec = bus
    keyboard.connect(engine.midi_port_name)
    time.sleep(SETTLE)
    yield engine, rec, keyboard
    engine.panic()
    time.sleep(0.1)


def _pitch_ok(rec, start, end, note, tol_cents=5.0):
    rate = rec.samplerate
    tone = dominant_tone(rec.audio(start, end), rate)
    assert rec.covered(start, end) > 0.9
    assert abs(cents(tone.frequency, midi_to_hz(note))) < tol_cents, (note, tone)
    assert tone.rms > 0.01, tone
    return tone


def test_notes_sound_at_their_pitch_and_stop_after_release(played):
    engine, rec, kbd = played
    rate = rec.samplerate
    onsets = {}
    for note in (60, 67, 76):
        onsets[note] = rec.frame_time
        kbd.note_on(note, 100)
        time.sleep(0.5)
        kbd.note_off(note)
        time.sleep(0.05)
    off = rec.frame_time
    time.sleep(0.55)
    for note, onset in onsets.items():
        _pitch_ok(rec, onset + rate // 10, onset + int(0.45 * rate), note)
    onset = onsets[60]  # the later onsets overlap the previous note's release tail
    heard = rec.audio(onset, onset + rate // 2)
    first = int(np.argmax(np.abs(heard) > 0.005))
    assert 0 < first / rate < 0.1, f"MIDI-to-audio latency {first / rate * 1000:.1f} ms"
    after = rec.audio(off + int(0.35 * rate), off + int(0.5 * rate))
    assert np.max(np.abs(after)) < 1e-4
    assert engine.meters()["voices"] == 0


def test_sustain_pedal_holds_notes_until_released(played):
    engine, rec, kbd = played
    rate = rec.samplerate
    kbd.send(0xB0, 64, 127)
    kbd.note_on(64, 100)
    time.sleep(0.2)
    kbd.note_off(64)
    released_key = rec.frame_time
    time.sleep(0.7)
    _pitch_ok(rec, released_key + rate // 10, released_key + int(0.6 * rate), 64)
    kbd.send(0xB0, 64, 0)
    pedal_up = rec.frame_time
    time.sleep(0.55)
    assert np.max(np.abs(rec.audio(pedal_up + int(0.35 * rate), pedal_up + int(0.5 * rate)))) < 1e-4


def test_held_notes_follow_midi_keys_and_pedal_while_the_worker_is_idle(played):
    engine, rec, kbd = played
    assert engine.worker.idle()  # every note generated: nothing else folds the callback's MIDI into the bookkeeping

    def wait_for(expected):
        deadline = time.monotonic() + 2
        while engine.held_notes() != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return engine.held_notes()

    kbd.note_on(60, 100)
    kbd.note_on(67, 90)
    assert wait_for([60, 67]) == [60, 67]
    kbd.send(0xB0, 64, 127)
    kbd.note_off(60)
    assert wait_for([60, 67]) == [60, 67]  # pedal-held still counts as held
    kbd.note_off(67)
    kbd.send(0xB0, 64, 0)
    assert wait_for([]) == []


def test_pitch_bend_moves_the_pitch_by_the_bend_amount(played):
    engine, rec, kbd = played
    rate = rec.samplerate
    kbd.note_on(69, 100)
    time.sleep(0.4)
    start = rec.frame_time
    time.sleep(0.35)
    _pitch_ok(rec, start, start + int(0.3 * rate), 69)
    kbd.send(0xE0, 0x7F, 0x7F)  # full up: +2 semitones
    time.sleep(0.1)
    start = rec.frame_time
    time.sleep(0.35)
    _pitch_ok(rec, start, start + int(0.3 * rate), 71)
    kbd.send(0xE0, 0x00, 0x00)  # full down: -2 semitones
    time.sleep(0.1)
    start = rec.frame_time
    time.sleep(0.35)
    _pitch_ok(rec, start, start + int(0.3 * rate), 67)
    kbd.send(0xE0, 0x00, 0x40)  # centre
    kbd.note_off(69)


def test_panic_and_all_sound_off_silence_everything(played):
    engine, rec, kbd = played
    rate = rec.samplerate
    for via_midi in (False, True):
        kbd.send(0xB0, 64, 127)  # pedal down too: panic must override it
        for note in (48, 55, 60, 64, 67, 72):
            kbd.note_on(note, 110)
        time.sleep(0.4)
        assert engine.meters()["voices"] == 6
        if via_midi:
            kbd.send(0xB0, 120, 0)
        else:
            engine.panic()
        t = rec.frame_time
        time.sleep(0.3)
        assert np.max(np.abs(rec.audio(t + int(0.1 * rate), t + int(0.25 * rate)))) < 1e-4, via_midi
        assert engine.meters()["voices"] == 0
    # CC123 (all notes off) releases held notes normally
    kbd.note_on(60)
    time.sleep(0.2)
    kbd.send(0xB0, 123, 0)
    t = rec.frame_time
    time.sleep(0.5)
    assert np.max(np.abs(rec.audio(t + int(0.35 * rate), t + int(0.45 * rate)))) < 1e-4


def test_replugged_keyboard_is_reconnected(bus):
    import rtmidi

    engine, rec = bus
    rate = rec.samplerate
    name = unique_name("hwkbd")

    def plug():
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
        out.open_virtual_port("out")
        return out

    def played_note(out, note):
        start = rec.frame_time
        out.send_message([0x90, note, 100])
        time.sleep(0.4)
        out.send_message([0x80, note, 0])
        time.sleep(0.05)
        return _pitch_ok(rec, start + rate // 10, start + int(0.35 * rate), note)

    kbd = plug()
    try:
        engine.connect_midi(f"{name}:out")
        time.sleep(SETTLE)
        played_note(kbd, 62)
        reconnects = engine.midi.reconnects
        kbd.close_port()
        kbd.delete()  # unplugged: its JACK client is gone
        deadline = time.monotonic() + 5
        while engine.midi.connected.get(f"{name}:out") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.midi.connected[f"{name}:out"] is False
        kbd = plug()  # plugged back in
        deadline = time.monotonic() + 5
        while engine.midi.reconnects == reconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.midi.reconnects == reconnects + 1
        time.sleep(SETTLE)
        played_note(kbd, 65)
    finally:
        engine.midi.disconnect(f"{name}:out")
        kbd.close_port()
        engine.panic()
        time.sleep(0.1)


def test_flood_of_random_bytes_crashes_nothing_and_leaves_no_stuck_note(played):
    engine, rec, kbd = played
    rate = rec.samplerate
    rng = random.Random(1234)
    sent = 0
    for _ in range(3000):
        message = [rng.randrange(256) for _ in range(rng.choice((1, 2, 3, 3, 3, 4, 7)))]
        try:
            kbd.send(*message)
            sent += 1
        except (ValueError, RuntimeError):
            pass  # rtmidi refuses some byte strings itself; whatever it sends is what we must survive
        if sent % 16 == 0:
            time.sleep(0.002)  # pace it: a JACK MIDI port buffer holds one period's worth; overflow drops events
    assert sent > 1000
    time.sleep(0.2)
    # what a keyboard sends when every key is up and the pedal released, on every channel
    for ch in range(16):
        kbd.send(0xB0 | ch, 64, 0)
        kbd.send(0xE0 | ch, 0, 0x40)
        for note in range(128):
            kbd.note_off(note, channel=ch)
        time.sleep(0.01)
    # rtmidi's JACK input holds back events after an unterminated SysEx start until an event ends with F7
    # (see synth.engine.midi_io); a well-formed SysEx releases them, and the parser recovers the note-offs.
    kbd.send(0xF0, 0x7D, 0x00, 0xF7)
    t = rec.frame_time
    time.sleep(0.6)
    assert np.max(np.abs(rec.audio(t + int(0.45 * rate), t + int(0.55 * rate)))) < 1e-4
    assert engine.meters()["voices"] == 0
    start = rec.frame_time
    kbd.note_on(69)
    time.sleep(0.4)
    kbd.note_off(69)
    _pitch_ok(rec, start + rate // 10, start + int(0.35 * rate), 69)
