"""``BlockRenderer``: the audio thread's side of the engine, one block at a time.

It owns what the audio callback touches: the ``Mixer``, the ``PeakLimiter``, the event deque other threads append
to, and the small stores the callback writes for other threads (MIDI events it played, CC values and counts, the
last program change). The ``Engine`` runs one in its own process (``Engine(audio_process=False)``), the audio host
runs one in a process of its own (``synth.engine.audio_host``): the same code either way.

Real-time rules: ``process_block`` pulls MIDI from rtmidi's queues, drains the deque (append/popleft are atomic),
mixes and limits; it allocates nothing in steady state, takes no lock and never calls torch.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from synth.engine.buffers import BufferSlot
from synth.engine.limiter import PeakLimiter
from synth.engine.midi_io import (ALL_NOTES_OFF, ALL_SOUND_OFF, BEND, CONTROL, NOTE_OFF, NOTE_ON, PROGRAM, SUSTAIN,
                                  Event)
from synth.engine.voices import Mixer

PANIC = 100  # the engine's own event kind (``Engine.panic()``): all sound off + all notes off


class BlockRenderer:
    def __init__(self, mixer: Mixer, limiter: PeakLimiter, layer_slots: list[list[BufferSlot]]) -> None:
        self.mixer = mixer
        self.limiter = limiter
        self.layer_slots = layer_slots
        self.midi = None  # a MidiInput (or anything with ``drain(sink)``) the block pulls from; None: no MIDI
        self.events: deque[Event] = deque()
        self.seen: deque[Event] = deque(maxlen=4096)  # MIDI events played, for the worker's priorities
        # the last value of each CC and program change, with a wrapping count per slot: the callback only stores
        # small ints (no allocation), the GUI/CLI polls them (synth.engine.cc_control) and smooths off this thread
        self.cc_values = bytearray(128)
        self.cc_counts = bytearray(129)  # index 128: program changes
        self.program = 0

    @classmethod
    def create(cls, sample_rate: int, block_size: int, channels: int, max_voices: int, velocity_layers,
               settings: dict, layer_slots: list[list[BufferSlot]]) -> "BlockRenderer":
        """A renderer with a new mixer and limiter set up from ``settings`` (``EngineSettings`` as a dict): the
        engine's in-process one and the audio host's are built the same way."""
        mixer = Mixer(sample_rate, block_size, max_voices, attack=settings["attack"], release=settings["release"],
                      bend_range=settings["bend_range"], velocity_curve=settings["velocity_curve"])
        mixer.set_velocity_layers(velocity_layers)
        limiter = PeakLimiter(sample_rate, block_size, channels, master_gain_db=settings["master_gain_db"])
        return cls(mixer, limiter, layer_slots)

    def process_block(self, out: np.ndarray) -> None:
        """One audio block: apply queued events, mix the voices, master gain + limiter. Real-time safe."""
        midi = self.midi
        if midi is not None:
            midi.drain(self.from_midi)
        events = self.events
        while events:
            try:
                kind, a, b = events.popleft()
            except IndexError:
                break
            self.apply(kind, a, b)
        self.mixer.render(out)
        self.limiter.process(out)

    def from_midi(self, event: Event) -> None:
        kind, a, b = event
        if kind == CONTROL:
            self.cc_values[a] = b
            self.cc_counts[a] = (self.cc_counts[a] + 1) & 0xFF
            return
        if kind == PROGRAM:
            self.program = a
            self.cc_counts[128] = (self.cc_counts[128] + 1) & 0xFF
            return
        self.apply(kind, a, b)
        self.seen.append(event)  # for the worker's priorities (folded in by Engine.priority, off the audio thread)

    def apply(self, kind: int, a, b) -> None:
        mixer = self.mixer
        if kind == NOTE_ON:  # the slot of the velocity's layer: velocity selects the timbre
            mixer.note_on(a, b, self.layer_slots[mixer.layer_index(b)][a])
        elif kind == NOTE_OFF:
            mixer.note_off(a)
        elif kind == SUSTAIN:
            mixer.sustain(bool(a))
        elif kind == BEND:
            mixer.pitch_bend(a)
        elif kind == ALL_NOTES_OFF:
            mixer.all_notes_off()
        elif kind == ALL_SOUND_OFF or kind == PANIC:
            mixer.all_sound_off()

    def apply_settings(self, *, attack: float, release: float, bend_range: float, velocity_curve: str,
                       master_gain_db: float) -> None:
        """Plain stores the callback reads at its next block (and a table swap for the velocity curve)."""
        mixer = self.mixer
        mixer.attack, mixer.release, mixer.bend_range = float(attack), float(release), float(bend_range)
        mixer.set_velocity_curve(velocity_curve)  # one table reference swapped (equal values when unchanged)
        self.limiter.set_master_gain_db(float(master_gain_db))
