"""Standard MIDI files as a timeline in seconds, the form the offline renderer plays.

Rendering must place every event where a sequencer would: tempo changes anywhere in the file move everything after
them, so the file is read through mido's merged tracks (which apply the tempo map) and each message is stamped with
its absolute time in seconds. Only what the instrument can play is kept, per channel:

- note on / note off (a note on with velocity 0 is a note off),
- sustain pedal (CC64, down at >= 64),
- pitch bend, converted to semitones with the channel's bend range (+-2 semitones unless RPN 0 sets another),
- program changes (they choose the timbre of the notes that follow on that channel).

The General MIDI drum channel (channel 10, index 9) is skipped: a pitched timbre map has no drum kit, and playing
drum keys as pitches would sound like wrong notes. Everything wrong with the file itself (not a MIDI file, truncated,
bad data bytes, type 2 files) raises ``MidiFileError`` naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DRUM_CHANNEL = 9  # channel 10 in the 1-based numbering musicians use
DEFAULT_BEND_RANGE = 2.0  # semitones, the General MIDI default

NOTE_ON = "note_on"
NOTE_OFF = "note_off"
SUSTAIN = "sustain"
PITCH_BEND = "pitch_bend"
PROGRAM = "program"


class MidiFileError(Exception):
    """A MIDI file that cannot be read or played; the message names the file and what is wrong."""


@dataclass(frozen=True)
class MidiEvent:
    """One playable event. ``value`` holds: velocity (notes), 0/1 pedal (sustain), semitones (bend), program."""

    time: float
    channel: int
    kind: str
    note: int = 0
    value: float = 0.0


@dataclass(frozen=True)
class Note:
    """A note with both ends known; ``end`` is the key release (the sustain pedal may hold it longer)."""

    start: float
    end: float
    channel: int
    pitch: int
    velocity: int
    program: int


@dataclass
class MidiTimeline:
    """Everything the renderer needs from one file."""

    path: Path
    events: list[MidiEvent]
    duration: float
    skipped_drum_notes: int = 0

    def notes(self) -> list[Note]:
        """Notes paired from the events (first on, first off per channel and key)."""
        return pair_notes(self.events)

    def channels(self) -> list[int]:
        return sorted({e.channel for e in self.events if e.kind == NOTE_ON})


def read_midi(path: str | Path) -> MidiTimeline:
    """Read a MIDI file into a timeline; raises ``MidiFileError`` for anything unreadable or unsupported."""
    import mido

    path = Path(path)
    if not path.is_file():
        raise MidiFileError(f"{path}: no such MIDI file")
    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise MidiFileError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from exc
    if midi.type == 2:
        raise MidiFileError(f"{path}: MIDI type 2 (independent sequences) is not supported; use type 0 or 1")
    try:
        events, skipped = _timeline(midi)
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise MidiFileError(f"{path}: broken MIDI data ({type(exc).__name__}: {exc})") from exc
    duration = max([midi.length] + [e.time for e in events])
    return MidiTimeline(path=path, events=events, duration=float(duration), skipped_drum_notes=skipped)


def _timeline(midi) -> tuple[list[MidiEvent], int]:
    """Walk the merged tracks (mido applies the tempo map) and keep the playable events."""
    now = 0.0
    events: list[MidiEvent] = []
    channels: dict[int, _ChannelState] = {}
    skipped = 0
    for msg in midi:
        now += msg.time
        if msg.is_meta or not hasattr(msg, "channel"):
            continue
        if msg.channel == DRUM_CHANNEL:
            skipped += msg.type == "note_on" and msg.velocity > 0
            continue
        state = channels.setdefault(msg.channel, _ChannelState())
        event = state.translate(msg, now)
        if event is not None:
            events.append(event)
    return events, skipped


class _ChannelState:
    """Per-channel controller state: the RPN selection and the pitch-bend range it sets."""

    def __init__(self) -> None:
        self.rpn = [127, 127]  # (MSB, LSB); 127/127 is "no RPN selected"
        self.bend_semitones = int(DEFAULT_BEND_RANGE)
        self.bend_cents = 0

    @property
    def bend_range(self) -> float:
        return self.bend_semitones + self.bend_cents / 100.0

    def translate(self, msg, now: float) -> MidiEvent | None:
        kind = msg.type
        if kind == "note_on" and msg.velocity > 0:
            return MidiEvent(now, msg.channel, NOTE_ON, msg.note, float(msg.velocity))
        if kind in ("note_on", "note_off"):
            return MidiEvent(now, msg.channel, NOTE_OFF, msg.note, 0.0)
        if kind == "pitchwheel":
            return MidiEvent(now, msg.channel, PITCH_BEND, 0, msg.pitch / 8192.0 * self.bend_range)
        if kind == "program_change":
            return MidiEvent(now, msg.channel, PROGRAM, 0, float(msg.program))
        if kind == "control_change":
            return self._control(msg, now)
        return None

    def _control(self, msg, now: float) -> MidiEvent | None:
        number, value = msg.control, msg.value
        if number == 64:
            return MidiEvent(now, msg.channel, SUSTAIN, 0, 1.0 if value >= 64 else 0.0)
        if number == 101:
            self.rpn[0] = value
        elif number == 100:
            self.rpn[1] = value
        elif number in (6, 38) and self.rpn == [0, 0]:  # data entry for RPN 0: pitch-bend sensitivity
            if number == 6:
                self.bend_semitones = value
            else:
                self.bend_cents = value
        elif number == 121:  # reset all controllers
            self.rpn = [127, 127]
        return None


def pair_notes(events: list[MidiEvent]) -> list[Note]:
    """Pair note ons with their note offs; notes still held at the end close at the last event's time."""
    open_notes: dict[tuple[int, int], list[tuple[float, int, int]]] = {}
    programs: dict[int, int] = {}
    notes: list[Note] = []
    end = max((e.time for e in events), default=0.0)
    for e in events:
        key = (e.channel, e.note)
        if e.kind == PROGRAM:
            programs[e.channel] = int(e.value)
        elif e.kind == NOTE_ON:
            open_notes.setdefault(key, []).append((e.time, int(e.value), programs.get(e.channel, 0)))
        elif e.kind == NOTE_OFF and open_notes.get(key):
            start, velocity, program = open_notes[key].pop(0)
            notes.append(Note(start, e.time, e.channel, e.note, velocity, program))
    for (channel, pitch), pending in open_notes.items():
        for start, velocity, program in pending:
            notes.append(Note(start, end, channel, pitch, velocity, program))
    return sorted(notes, key=lambda n: (n.start, n.channel, n.pitch))
