"""Property-based fuzzing of the MIDI byte parser (issue 16): whatever bytes arrive, in whatever chunks, the parser
never raises, emits only well-formed events, decodes exactly what a well-formed stream says (running status,
real-time bytes anywhere, SysEx ended by F7 or by the next status byte), and never leaves a note that all-notes-off
(CC123) or an unplug (``release_events``) cannot stop.

Example counts are bounded (``EXAMPLES``) and derandomized so CI runs the same cases in a few seconds.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.engine.midi_io import (ALL_NOTES_OFF, ALL_SOUND_OFF, BEND, CONTROL, NOTE_OFF, NOTE_ON, PROGRAM, SUSTAIN,
                                  MidiParser)

EXAMPLES = {"bytes": 300, "chunks": 200, "cc123": 250, "decode": 250, "release": 200}
FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_byte = st.one_of(st.integers(0, 255), st.sampled_from([0xF0, 0xF7, 0xF8, 0xFE, 0xFF, 0x90, 0x80, 0xB0]))
_stream = st.lists(_byte, max_size=300)
_realtime = st.sampled_from([0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF])


def _well_formed(event, bend_range: float = 2.0) -> None:
    kind, a, b = event
    assert kind in (NOTE_ON, NOTE_OFF, SUSTAIN, BEND, ALL_NOTES_OFF, ALL_SOUND_OFF, CONTROL, PROGRAM)
    if kind == NOTE_ON:
        assert 0 <= a <= 127 and 1 <= b <= 127
    elif kind == NOTE_OFF:
        assert 0 <= a <= 127 and b == 0
    elif kind == SUSTAIN:
        assert a in (0, 1)
    elif kind == BEND:
        assert -bend_range <= a <= bend_range
    elif kind == CONTROL:  # any CC the parser does not act on itself (pad X/Y, mod wheel bindings)
        assert 0 <= a <= 127 and a not in (64, 120, 123, 124, 125, 126, 127) and 0 <= b <= 127
    elif kind == PROGRAM:
        assert 0 <= a <= 127 and b == 0


def _held_after(events, held=None) -> set[int]:
    """What an engine would hold after these events (pedal ignored: CC123 and release cover it)."""
    held = set() if held is None else held
    for kind, a, _ in events:
        if kind == NOTE_ON:
            held.add(a)
        elif kind == NOTE_OFF:
            held.discard(a)
        elif kind in (ALL_NOTES_OFF, ALL_SOUND_OFF):
            held.clear()
    return held


@settings(max_examples=EXAMPLES["bytes"], **FUZZ)
@given(_stream, st.one_of(st.none(), st.integers(0, 15)))
def test_any_bytes_give_only_well_formed_events(data, channel):
    parser = MidiParser(channel=channel)
    for event in parser.feed(data) + parser.feed_message(data):
        _well_formed(event)


@settings(max_examples=EXAMPLES["chunks"], **FUZZ)
@given(_stream, st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_chunking_does_not_change_what_feed_decodes(data, cuts):
    """feed() keeps its state across calls: the same bytes in any chunks give the same events."""
    whole = MidiParser().feed(data)
    parser, events, start = MidiParser(), [], 0
    for size in cuts * (len(data) // max(1, sum(cuts)) + 1):
        events += parser.feed(data[start : start + size])
        start += size
        if start >= len(data):
            break
    assert events == whole


@settings(max_examples=EXAMPLES["cc123"], **FUZZ)
@given(_stream, st.one_of(st.none(), st.integers(0, 15)), st.booleans())
def test_all_notes_off_after_any_garbage_leaves_nothing_held(data, channel, as_messages):
    """A single unterminated SysEx, a half message, running status: CC123 still ends every note."""
    parser = MidiParser(channel=channel)
    events = parser.feed_message(data) if as_messages else parser.feed(data)
    off = parser.feed([0xB0 | (channel or 0), 123, 0])
    assert off and off[-1] == (ALL_NOTES_OFF, 0, 0)
    assert _held_after(events + off) == set()
    assert not [ev for ev in parser.release_events() if ev[0] == NOTE_OFF]  # an unplug now has nothing to end


_message = st.one_of(
    st.tuples(st.just("on"), st.integers(0, 15), st.integers(0, 127), st.integers(1, 127)),
    st.tuples(st.just("off"), st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.tuples(st.just("on0"), st.integers(0, 15), st.integers(0, 127), st.just(0)),
    st.tuples(st.just("cc"), st.integers(0, 15), st.sampled_from([1, 7, 64, 120, 123, 127]), st.integers(0, 127)),
    st.tuples(st.just("bend"), st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.tuples(st.just("program"), st.integers(0, 15), st.integers(0, 127), st.none()),
    st.tuples(st.just("sysex"), st.lists(st.integers(0, 127), max_size=8), st.booleans(), st.none()),
)


def _encode(messages, running: list[bool], rt_positions: list[int], rt_bytes: list[int]):
    """Bytes for ``messages`` (running status where allowed and asked) with real-time bytes inserted anywhere, and
    the events the parser must produce."""
    out, expected, status = [], [], None
    for i, (kind, *rest) in enumerate(messages):
        use_running = running[i % len(running)]
        if kind == "sysex":
            payload, terminated, _ = rest
            out += [0xF0, *payload] + ([0xF7] if terminated else [])
            status = None  # SysEx cancels running status (an unterminated one is ended by the next status byte)
            continue
        channel, a, b = rest
        st_byte = {"on": 0x90, "on0": 0x90, "off": 0x80, "cc": 0xB0, "bend": 0xE0, "program": 0xC0}[kind] | channel
        if not (use_running and status == st_byte):
            out.append(st_byte)
        status = st_byte
        out += [a] if kind == "program" else [a, b]
        if kind == "on":
            expected.append((NOTE_ON, a, b))
        elif kind in ("off", "on0"):
            expected.append((NOTE_OFF, a, 0))
        elif kind == "cc":
            expected += {64: [(SUSTAIN, 1 if b >= 64 else 0, 0)], 120: [(ALL_SOUND_OFF, 0, 0)],
                         123: [(ALL_NOTES_OFF, 0, 0)], 127: [(ALL_NOTES_OFF, 0, 0)]}.get(a, [(CONTROL, a, b)])
        elif kind == "program":
            expected.append((PROGRAM, a, 0))
        else:
            value = (a | (b << 7)) - 8192
            expected.append((BEND, value / (8192.0 if value < 0 else 8191.0) * 2.0, 0))
    for pos, rt in sorted(zip(rt_positions, rt_bytes), reverse=True):
        out.insert(pos % (len(out) + 1), rt)
    return out, expected


@settings(max_examples=EXAMPLES["decode"], **FUZZ)
@given(st.lists(_message, max_size=30), st.lists(st.booleans(), min_size=1, max_size=8),
       st.lists(st.integers(0, 10_000), max_size=10), st.lists(_realtime, max_size=10))
def test_well_formed_streams_decode_exactly(messages, running, rt_positions, rt_bytes):
    """Running status, real-time bytes inside messages and SysEx, SysEx without F7: every message is decoded, so
    note-ons and note-offs pair up exactly as they were sent."""
    data, expected = _encode(messages, running, rt_positions, rt_bytes)
    assert MidiParser().feed(data) == expected


@settings(max_examples=EXAMPLES["release"], **FUZZ)
@given(_stream, st.lists(_message, max_size=20), st.lists(st.booleans(), min_size=1, max_size=4))
def test_unplug_release_ends_exactly_what_the_device_holds(garbage, messages, running):
    parser = MidiParser()
    data, _ = _encode(messages, running, [], [])
    events = parser.feed(garbage) + parser.feed(data)
    held = _held_after(events)
    release = parser.release_events()
    assert sorted(a for kind, a, _ in release if kind == NOTE_OFF) == sorted(held)
    assert _held_after(release, set(held)) == set()
    assert parser.release_events() == []  # forgotten once released
