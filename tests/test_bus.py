"""End-to-end plumbing on the real bus: MIDI in through a JACK virtual port, a tone out through sounddevice on the
JACK host API, captured by a JACK recorder and checked for pitch, latency and silence after note-off.

This is the harness the engine tests reuse; it checks the bus itself, before any model is involved.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.jackbus import cents, dominant_tone, jack_output_device, midi_to_hz, new_output_ports, output_ports

pytestmark = pytest.mark.jack


class ToneInstrument:
    """A minimal MIDI-driven sine player: rtmidi JACK input -> sounddevice callback. Test scaffolding only."""

    def __init__(self, client_name: str) -> None:
        import rtmidi
        import sounddevice as sd

        self.note = -1
        self.phase = 0.0
        self.midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client_name)
        self.midi_in.open_virtual_port("midi_in")
        self.midi_in.set_callback(self._on_midi)
        self.stream = sd.OutputStream(device=jack_output_device(), samplerate=48000, channels=2,
                                      dtype="float32", blocksize=1024, callback=self._on_audio)

    def _on_midi(self, event, _data=None) -> None:
        message, _delta = event
        status = message[0] & 0xF0
        if status == 0x90 and message[2] > 0:
            self.note = message[1]
        elif status in (0x80, 0x90) and message[1] == self.note:
            self.note = -1

    def _on_audio(self, outdata, frames, _time, _status) -> None:
        if self.note < 0:
            outdata.fill(0.0)
            return
        step = 2 * np.pi * midi_to_hz(self.note) / 48000
        wave = 0.3 * np.sin(self.phase + step * np.arange(frames))
        self.phase = (self.phase + step * frames) % (2 * np.pi)
        outdata[:] = wave[:, None]

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()
        self.midi_in.close_port()


def test_midi_note_becomes_audible_tone_at_its_pitch(recorder, keyboard):
    before = output_ports()
    instrument = ToneInstrument("bustest")
    try:
        instrument.stream.start()
        recorder.connect_from(*new_output_ports(before)[:2])
        keyboard.connect("bustest:midi_in")
        recorder.start()
        time.sleep(0.3)  # let new clients settle: activation can cost the server a few periods
        rate = recorder.samplerate
        onsets = {}
        for note in (69, 76):
            onsets[note] = recorder.frame_time
            keyboard.note_on(note)
            time.sleep(0.8)
            keyboard.note_off(note)
        off_frame = recorder.frame_time
        time.sleep(0.4)
        recorder.stop()

        for note, onset in onsets.items():
            window = recorder.audio(onset + rate // 20, onset + int(0.7 * rate))
            tone = dominant_tone(window, rate)
            assert abs(cents(tone.frequency, midi_to_hz(note))) < 5, (note, tone)
            assert tone.rms > 0.1
            heard = recorder.audio(onset, onset + rate // 2)
            first_sound = int(np.argmax(np.abs(heard) > 0.05))
            assert first_sound / rate < 0.1, f"MIDI-to-audio latency {first_sound / rate * 1000:.1f} ms"
        after = recorder.audio(off_frame + rate // 10, off_frame + int(0.35 * rate))
        assert np.max(np.abs(after)) < 1e-4
    finally:
        instrument.close()
