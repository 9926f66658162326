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

Timing, as a sequencer plays it:

- metrical files (ticks per beat): the tempo map; a tempo of 0 microseconds per beat has no meaning (every later
  event would land at the same instant) and is refused rather than rendered as a pile of silent notes;
- SMPTE files (frames per second x ticks per frame in the header): absolute time, tempo events ignored, as the
  standard says; 29 frames per second means 29.97 (drop frame);
- a note whose key goes up on the tick it went down (drum and arpeggiator exports do this) lasts
  ``MIN_NOTE_SECONDS``, as in FluidSynth (its ``synth.min-note-length``), instead of vanishing;
- caps: a file bigger than ``DEFAULT_MAX_BYTES`` or a song longer than ``DEFAULT_MAX_SECONDS`` is refused before any
  audio is allocated (a 44-byte file can ask for billions of seconds); both are parameters of ``read_midi``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path

DRUM_CHANNEL = 9  # channel 10 in the 1-based numbering musicians use
DEFAULT_BEND_RANGE = 2.0  # semitones, the General MIDI default
DEFAULT_MAX_SECONDS = 30 * 60.0  # longer than nearly any piece; the render holds this much audio in memory
# 2 MiB is about ten times a long orchestral score; mido needs ~200 bytes of memory and ~10 us per byte of file
DEFAULT_MAX_BYTES = 2 << 20
MIN_NOTE_SECONDS = 0.01
DEFAULT_TEMPO = 500000  # microseconds per beat (120 bpm) until the file sets one
SMPTE_RATES = {24: 24.0, 25: 25.0, 29: 30000 / 1001, 30: 30.0}

NOTE_ON = "note_on"
NOTE_OFF = "note_off"
SUSTAIN = "sustain"
PITCH_BEND = "pitch_bend"
PROGRAM = "program"


class MidiFileError(Exception):
    """A MIDI file that cannot be read or played; the message names the file and what is wrong."""


class MidiTooLongError(MidiFileError):
    """The song is longer than the allowed length (the caller may offer a way to raise the limit)."""


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


def read_midi(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> MidiTimeline:
    """Read a MIDI file into a timeline; raises ``MidiFileError`` for anything unreadable or unsupported, and
    ``MidiTooLongError`` for a song longer than ``max_seconds``."""
    path = Path(path)
    midi = _parse(path, max_bytes)
    clock = _Clock(path, midi.ticks_per_beat, max_seconds)
    try:
        events, skipped, end = _timeline(midi, clock)
    except MidiFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - mido's messages for crafted data: any failure is a broken file
        raise MidiFileError(f"{path}: broken MIDI data ({type(exc).__name__}: {str(exc)[:120]})") from None
    events = _lengthen_short_notes(events)
    duration = max([end] + [e.time for e in events])
    return MidiTimeline(path=path, events=events, duration=float(duration), skipped_drum_notes=skipped)


def _parse(path: Path, max_bytes: int):
    """The file through mido, size-capped; every way mido can fail on crafted bytes becomes ``MidiFileError``."""
    import mido

    try:
        size = path.stat().st_size
        if not path.is_file():
            raise MidiFileError(f"{path}: not a file")
    except OSError:
        raise MidiFileError(f"{path}: no such MIDI file") from None
    if size > max_bytes:
        raise MidiFileError(f"{path}: {size} bytes is more than the {max_bytes} bytes a MIDI file may have here")
    try:
        midi = mido.MidiFile(file=io.BytesIO(path.read_bytes()))
    except Exception as exc:  # noqa: BLE001 - OSError, EOFError, ValueError, KeyError, struct.error, ...
        raise MidiFileError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if midi.type == 2:
        raise MidiFileError(f"{path}: MIDI type 2 (independent sequences) is not supported; use type 0 or 1")
    if midi.type not in (0, 1):
        raise MidiFileError(f"{path}: MIDI format {midi.type} does not exist (the header is broken)")
    return midi


class _Clock:
    """Ticks to seconds: the tempo map for metrical files, frames x ticks per frame for SMPTE ones."""

    def __init__(self, path: Path, division: int, max_seconds: float) -> None:
        self.path, self.max_seconds, self.now = path, float(max_seconds), 0.0
        division &= 0xFFFF  # mido reads the header field as a signed number
        self.smpte = bool(division & 0x8000)
        if self.smpte:
            fps, per_frame = 256 - (division >> 8), division & 0xFF  # the high byte is -fps in two's complement
            if fps not in SMPTE_RATES or per_frame == 0:
                raise MidiFileError(f"{path}: SMPTE timing of {fps} frames/s x {per_frame} ticks per frame is not "
                                    f"valid (frames/s must be 24, 25, 29 or 30)")
            self.seconds_per_tick = 1.0 / (SMPTE_RATES[fps] * per_frame)
        elif division == 0:
            raise MidiFileError(f"{path}: the header says 0 ticks per beat, so no event has a time")
        else:
            self.ticks_per_beat = division
            self.seconds_per_tick = DEFAULT_TEMPO / 1e6 / division

    def advance(self, ticks: int) -> float:
        """Move on by ``ticks``; refuse as soon as the song runs past the length cap (before any audio exists)."""
        if ticks:
            self.now += ticks * self.seconds_per_tick if ticks < 1 << 60 else math.inf
            if self.now > self.max_seconds:
                raise MidiTooLongError(f"{self.path}: longer than the {_minutes(self.max_seconds)} limit (an event "
                                       f"at {_minutes(self.now)}); render a shorter file or raise the limit")
        return self.now

    def set_tempo(self, tempo: int) -> None:
        if self.smpte:
            return  # SMPTE time is absolute: tempo events are for display only
        if tempo <= 0:
            raise MidiFileError(f"{self.path}: tempo 0 (0 microseconds per beat) at {self.now:.3f} s: every later "
                                "event would sound at the same instant; fix the tempo in a sequencer")
        self.seconds_per_tick = tempo / 1e6 / self.ticks_per_beat


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.4g} min" if seconds < 360000 else f"{seconds / 3600:.3g} h"


def _timeline(midi, clock: _Clock) -> tuple[list[MidiEvent], int, float]:
    """Walk the merged tracks (tick order) and keep the playable events; returns them, the skipped drum notes and
    the time of the last message (end of track included: a sequencer plays the silence up to it)."""
    events: list[MidiEvent] = []
    channels: dict[int, _ChannelState] = {}
    skipped = 0
    for msg in midi.merged_track:
        now = clock.advance(msg.time)
        if msg.type == "set_tempo":
            clock.set_tempo(msg.tempo)
        if msg.is_meta or not hasattr(msg, "channel"):
            continue
        if msg.channel == DRUM_CHANNEL:
            skipped += msg.type == "note_on" and msg.velocity > 0
            continue
        state = channels.setdefault(msg.channel, _ChannelState())
        event = state.translate(msg, now)
        if event is not None:
            events.append(event)
    return events, skipped, clock.now


def _lengthen_short_notes(events: list[MidiEvent]) -> list[MidiEvent]:
    """Give every note at least ``MIN_NOTE_SECONDS`` by moving its note off (notes pair first on, first off per
    channel and key, as in ``pair_notes``); events stay in time order."""
    starts: dict[tuple[int, int], list[float]] = {}
    moved = False
    out = []
    for e in events:
        key = (e.channel, e.note)
        if e.kind == NOTE_ON:
            starts.setdefault(key, []).append(e.time)
        elif e.kind == NOTE_OFF and starts.get(key):
            start = starts[key].pop(0)
            if e.time - start < MIN_NOTE_SECONDS:
                e, moved = replace(e, time=start + MIN_NOTE_SECONDS), True
        out.append(e)
    return sorted(out, key=lambda e: e.time) if moved else out


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
