"""Property-based fuzzing of MIDI files (issue 16): whatever bytes a file holds, reading it gives a timeline that
is safe to render or one ``MidiFileError`` naming the file, and rendering never crashes or leaves the ceiling.

Example counts are bounded (``EXAMPLES``) and derandomized so CI runs the same cases in a few seconds.
"""

from __future__ import annotations

import math
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.engine.sources import SineNoteSource
from synth.midi_file import MIN_NOTE_SECONDS, NOTE_OFF, NOTE_ON, MidiFileError, read_midi
from synth.presets import Preset
from synth.render import NoteBank, ProgramMap, render_timeline
from synth.timbre import Timbre

EXAMPLES = {"bytes": 300, "header": 300, "events": 150, "render": 12, "cli": 8}
MAX_SECONDS = 20.0
FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_folder = Path(tempfile.mkdtemp(prefix="fuzz-midi-"))
_counter = iter(range(10 ** 9))


def _file(data: bytes) -> Path:
    path = _folder / f"f{next(_counter)}.mid"
    path.write_bytes(data)
    return path


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _read(data: bytes):
    """read_midi's contract: a timeline or MidiFileError naming the file, nothing else."""
    path = _file(data)
    try:
        return read_midi(path, max_seconds=MAX_SECONDS)
    except MidiFileError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return None


def _check_timeline(timeline) -> None:
    times = [e.time for e in timeline.events]
    assert all(math.isfinite(t) and 0.0 <= t <= MAX_SECONDS + MIN_NOTE_SECONDS for t in times)
    assert times == sorted(times)
    assert math.isfinite(timeline.duration) and timeline.duration >= max(times, default=0.0)
    last = max(times, default=0.0)
    for note in timeline.notes():
        assert 0 <= note.pitch <= 127 and 1 <= note.velocity <= 127
        assert note.end >= note.start
        if note.end < last:  # closed by its own note off (notes open at the end close there)
            assert note.end - note.start >= MIN_NOTE_SECONDS - 1e-9


# ---------------------------------------------------------------- bytes


@settings(max_examples=EXAMPLES["bytes"], **FUZZ)
@given(st.binary(max_size=600))
def test_random_bytes(data):
    timeline = _read(data)
    if timeline is not None:
        _check_timeline(timeline)


@settings(max_examples=EXAMPLES["header"], **FUZZ)
@given(fmt=st.integers(0, 0xFFFF), division=st.integers(0, 0xFFFF), body=st.binary(max_size=400),
       declared=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)), tracks=st.integers(0, 3))
def test_valid_header_random_track(fmt, division, body, declared, tracks):
    """A well-formed header and chunk so the parser goes deep into the track data (random bytes rarely do)."""
    length = len(body) if declared is None else declared
    data = b"MThd" + struct.pack(">IHHH", 6, fmt, tracks, division) + b"MTrk" + struct.pack(">I", length) + body
    timeline = _read(data)
    if timeline is not None:
        _check_timeline(timeline)


# ---------------------------------------------------------------- well-formed events, hostile values

_delta = st.one_of(st.integers(0, 200), st.integers(0, 0x0FFFFFFF))
_channel = st.integers(0, 15)
_data7 = st.integers(0, 127)
_event = st.one_of(
    st.tuples(_delta, st.builds(lambda c, n, v: bytes([0x90 | c, n, v]), _channel, _data7, _data7)),
    st.tuples(_delta, st.builds(lambda c, n, v: bytes([0x80 | c, n, v]), _channel, _data7, _data7)),
    st.tuples(_delta, st.builds(lambda c, k, v: bytes([0xB0 | c, k, v]), _channel, st.sampled_from([6, 38, 64, 100,
                                                                                                   101, 121]), _data7)),
    st.tuples(_delta, st.builds(lambda c, lo, hi: bytes([0xE0 | c, lo, hi]), _channel, _data7, _data7)),
    st.tuples(_delta, st.builds(lambda c, p: bytes([0xC0 | c, p]), _channel, _data7)),
    st.tuples(_delta, st.builds(lambda t: b"\xff\x51\x03" + t.to_bytes(3, "big"),
                                st.one_of(st.just(0), st.integers(1, 0xFFFFFF)))),
)
_division = st.one_of(st.integers(1, 960), st.sampled_from([0, 0xE728, 0xE250, 0xE364, 0xE878, 0xE701, 0x8000]))


def _song(events, division: int, ntracks: int) -> bytes:
    chunks = []
    for k in range(ntracks):
        body = b"".join(_vlq(d) + e for d, e in events[k::ntracks]) + b"\x00\xff\x2f\x00"
        chunks.append(b"MTrk" + struct.pack(">I", len(body)) + body)
    return b"MThd" + struct.pack(">IHHH", 6, 1 if ntracks > 1 else 0, ntracks, division) + b"".join(chunks)


@settings(max_examples=EXAMPLES["events"], **FUZZ)
@given(st.lists(_event, max_size=40), _division, st.integers(1, 3))
def test_well_formed_files_with_hostile_values(events, division, ntracks):
    timeline = _read(_song(events, division, ntracks))
    if timeline is not None:
        _check_timeline(timeline)


_short_event = st.one_of(
    st.tuples(st.integers(0, 60), st.builds(lambda c, n, v: bytes([0x90 | c, n, v]), st.integers(0, 2),
                                            st.integers(55, 65), _data7)),
    st.tuples(st.integers(0, 60), st.builds(lambda c, n: bytes([0x80 | c, n, 0]), st.integers(0, 2),
                                            st.integers(55, 65))),
    st.tuples(st.integers(0, 60), st.builds(lambda c, v: bytes([0xB0 | c, 64, v]), st.integers(0, 2), _data7)),
    st.tuples(st.integers(0, 60), st.builds(lambda c, lo, hi: bytes([0xE0 | c, lo, hi]), st.integers(0, 2), _data7,
                                            _data7)),
)
_SOURCE = SineNoteSource(pitch_range=(55, 65), duration=0.5)
_BANK = NoteBank(_SOURCE, 16000)
_MAP = ProgramMap(family_timbres={}, everything=Preset("t", Timbre(0.0, 0.0, attack_ms=1.0, release_ms=30.0)))


@settings(max_examples=EXAMPLES["render"], **FUZZ)
@given(st.lists(_short_event, max_size=30), st.floats(-96.0, 24.0))
def test_rendering_fuzzed_songs_stays_finite_and_under_the_ceiling(events, gain_db):
    timeline = _read(_song(events, 96, 1))
    assert timeline is not None  # every value here is legal
    result = render_timeline(timeline, _BANK, _MAP, master_gain_db=gain_db)
    assert np.isfinite(result.audio).all()
    assert result.peak_dbfs <= -0.3 + 1e-3


@settings(max_examples=EXAMPLES["cli"], **FUZZ)
@given(st.binary(max_size=200), st.sampled_from(["-12", "nan", "1e9", "-inf", "0"]))
def test_the_render_command_never_raises(data, gain):
    from synth.cli import main

    path = _file(data)
    code = main(["render", str(path), "-o", str(path.with_suffix(".wav")), "--demo", "--quiet", "--force",
                 f"--gain-db={gain}", "--sample-rate", "16000", "--max-minutes", "0.3"])
    assert code in (0, 2)


@pytest.fixture(scope="module", autouse=True)
def _no_user_presets(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    yield
    mp.undo()
