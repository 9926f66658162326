"""The MIDI byte parser: every message kind the engine uses, running status, junk, and a fuzz run."""

from __future__ import annotations

import random

import pytest

from synth.engine.midi_io import (ALL_NOTES_OFF, ALL_SOUND_OFF, BEND, CONTROL, NOTE_OFF, NOTE_ON, PROGRAM, SUSTAIN,
                                  MidiParser,
                                  _match)


def test_channel_messages():
    p = MidiParser()
    assert p.feed([0x90, 60, 100]) == [(NOTE_ON, 60, 100)]
    assert p.feed([0x90, 60, 0]) == [(NOTE_OFF, 60, 0)]  # velocity 0 is a note-off
    assert p.feed([0x83, 61, 64]) == [(NOTE_OFF, 61, 0)]
    assert p.feed([0xB0, 64, 127, 0xB0, 64, 10]) == [(SUSTAIN, 1, 0), (SUSTAIN, 0, 0)]
    assert p.feed([0xB0, 120, 0, 0xB0, 123, 0]) == [(ALL_SOUND_OFF, 0, 0), (ALL_NOTES_OFF, 0, 0)]
    assert p.feed([0xB0, 1, 64, 0xC0, 5]) == [(CONTROL, 1, 64), (PROGRAM, 5, 0)]  # bindable CCs, presets
    assert p.feed([0xD0, 3, 0xA0, 60, 3]) == []  # aftertouch is ignored


def test_pitch_bend_scaling_and_range():
    p = MidiParser(bend_range=2.0)
    assert p.feed([0xE0, 0x00, 0x40]) == [(BEND, 0.0, 0)]
    (_, up, _), = p.feed([0xE0, 0x7F, 0x7F])
    (_, down, _), = p.feed([0xE0, 0x00, 0x00])
    assert up == pytest.approx(2.0) and down == pytest.approx(-2.0)
    p.bend_range = 12.0
    (_, half, _), = p.feed([0xE0, 0x00, 0x60])
    assert half == pytest.approx(6.0, abs=0.01)


def test_running_status_realtime_and_sysex():
    p = MidiParser()
    # running status: one status byte, three notes; a clock byte in the middle of a message changes nothing
    assert p.feed([0x90, 60, 100, 62, 100, 0xF8, 64, 0xFE, 90]) == [(NOTE_ON, 60, 100), (NOTE_ON, 62, 100),
                                                                     (NOTE_ON, 64, 90)]
    # sysex payload is skipped; a status byte ends it even without F7
    assert p.feed([0xF0, 0x7E, 0x90, 0x01, 0xF7, 0x90, 65, 1]) == [(NOTE_ON, 65, 1)]
    assert p.feed([0xF0, 1, 2, 3, 0x80, 65, 0]) == [(NOTE_OFF, 65, 0)]
    # system common cancels running status: the following data bytes are dropped
    assert p.feed([0xF2, 1, 2, 60, 100]) == []


def test_truncated_and_stray_bytes_are_dropped():
    p = MidiParser()
    assert p.feed([60, 100]) == []  # data without status
    assert p.feed_message([0x90, 60]) == []  # truncated: must not complete with the next message's bytes
    assert p.feed_message([0x90, 61, 100]) == [(NOTE_ON, 61, 100)]
    assert p.feed([0x90, 62, 0xB0, 64, 127]) == [(SUSTAIN, 1, 0)]
    assert p.feed(["x", None, 300, -1]) == []  # not even bytes


def test_channel_filter():
    p = MidiParser(channel=2)
    assert p.feed([0x90, 60, 100, 0x92, 61, 100, 0x9F, 62, 100]) == [(NOTE_ON, 61, 100)]
    p.channel = None
    assert len(p.feed([0x90, 60, 100, 0x92, 61, 100])) == 2


def test_fuzz_never_raises_and_yields_valid_events():
    rng = random.Random(7)
    p = MidiParser()
    count = 0
    for _ in range(3000):
        chunk = [rng.randrange(256) for _ in range(rng.randrange(1, 12))]
        events = p.feed_message(chunk) if rng.random() < 0.5 else p.feed(chunk)
        for kind, a, b in events:
            count += 1
            assert kind in (NOTE_ON, NOTE_OFF, SUSTAIN, BEND, ALL_NOTES_OFF, ALL_SOUND_OFF, CONTROL, PROGRAM)
            if kind in (CONTROL, PROGRAM):
                assert 0 <= a < 128 and 0 <= b < 128
            if kind == NOTE_ON:
                assert 0 <= a < 128 and 1 <= b < 128
            elif kind == NOTE_OFF:
                assert 0 <= a < 128
            elif kind == BEND:
                assert -2.0 <= a <= 2.0
    assert count > 100
    # after any junk, a complete message is understood
    assert p.feed_message([0x90, 70, 80]) == [(NOTE_ON, 70, 80)]


def test_port_name_matching():
    ports = ["system:midi_capture_1", "Keystation 49:out", "vkbd3:out"]
    assert _match(ports, "vkbd3:out") == 2
    assert _match(ports, "Keystation") == 1
    assert _match(ports, "nothing") is None
