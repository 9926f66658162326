"""Issue 16, hostile and unlucky inputs: each case found by the fault-injection pass gets a clear error (naming the
file or flag, exit code 2 on the command line, never a traceback) or is played the way a musician expects.

Items: 1 master gain NaN/inf/huge, 2 crafted JSON (deep nesting, 5000-digit integers, huge floats), 6 MIDI files
(a 44-byte file asking for 786 TiB, length cap, zero-length notes, tempo 0, SMPTE timing), 8 atomic preset rename,
stale temp files, out-of-range preset coordinates, a broken grid cache.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synth.cli import main
from synth.engine.note_cache import GridStore
from synth.engine.sources import SineNoteSource
from synth.export import ExportError, ExportRequest, export_notes
from synth.midi_file import MidiFileError, read_midi
from synth.presets import Preset, PresetError, PresetLibrary, read_preset, write_preset
from synth.render import ProgramMap, render_midi
from synth.timbre import Timbre
from synth.validate import InputError

HOSTILE_GAINS = ["nan", "inf", "-inf", "1000", "-1000", "1e308"]
PIANO = ProgramMap(family_timbres={}, everything=Preset("t", Timbre(0.0, 0.0, attack_ms=2.0, release_ms=50.0)))


# ---------------------------------------------------------------- raw Standard MIDI Files


def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(*tracks: bytes, division: int = 96, fmt: int = 0) -> bytes:
    """Header + track chunks; ``division`` is the raw 16-bit field (set the top bit for SMPTE timing)."""
    head = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division & 0xFFFF)
    return head + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


def track(*events: tuple[int, bytes]) -> bytes:
    """(delta ticks, event bytes)..., end of track appended."""
    return b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"


def note(delta_on: int, length: int, pitch: int = 60, velocity: int = 100) -> list[tuple[int, bytes]]:
    return [(delta_on, bytes([0x90, pitch, velocity])), (length, bytes([0x80, pitch, 0]))]


def tempo(us_per_beat: int) -> tuple[int, bytes]:
    return 0, b"\xff\x51\x03" + us_per_beat.to_bytes(3, "big")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def one_error_line(err: str, command: str) -> str:
    """The error output of a refused command: exactly one line from the command, no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"synth {command}:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def song(tmp_path) -> Path:
    return write(tmp_path / "song.mid", smf(track(*note(0, 48))))


@pytest.fixture(autouse=True)
def _own_config(tmp_path, monkeypatch):
    """Preset lookups by the command lines read the user folder: keep it a temp dir."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


# ---------------------------------------------------------------- 1. master gain


@pytest.mark.parametrize("gain", HOSTILE_GAINS)
def test_render_refuses_a_gain_that_is_not_finite_or_out_of_range(gain, song, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["render", str(song), "-o", str(out), "--demo", "--quiet", f"--gain-db={gain}"]) == 2
    assert "--gain-db" in one_error_line(capsys.readouterr().err, "render")
    assert not out.exists()


def test_render_api_refuses_a_nan_gain(song):
    with pytest.raises(InputError, match="master_gain_db"):
        render_midi(song, None, SineNoteSource(), PIANO, master_gain_db=float("nan"))


@pytest.mark.parametrize("gain", HOSTILE_GAINS)
def test_export_refuses_a_gain_that_is_not_finite_or_out_of_range(gain, tmp_path, capsys):
    out = tmp_path / "pack"
    code = main(["export", "--xy", "0", "0", "--pitches", "60", "-o", str(out), "--demo", "--quiet", "--json",
                 f"--gain-db={gain}"])
    captured = capsys.readouterr()
    assert code == 2 and "NaN" not in captured.out and not out.exists()
    assert "--gain-db" in one_error_line(captured.err, "export")


def test_export_api_refuses_a_nan_gain_and_point(tmp_path):
    request = ExportRequest(Timbre(0.0, 0.0), out_dir=tmp_path / "p", pitches=(60,), gain_db=float("nan"))
    with pytest.raises(ExportError, match="gain_db"):
        export_notes(SineNoteSource(), request)
    for bad in ({"x": float("inf")}, {"y": 1e300}):  # a timbre off the map cannot even be made
        with pytest.raises(InputError, match=next(iter(bad))):
            Timbre(**{"x": 0.0, "y": 0.0, **bad})
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("flag", [["--xy", "nan", "0"], ["--xy", "0", "1e300"], ["--sample-rate", "0"],
                                  ["--sample-rate", "1000000000"]])
def test_export_refuses_other_hostile_numbers(flag, tmp_path, capsys):
    args = ["export", "--pitches", "60", "-o", str(tmp_path / "p"), "--demo", "--quiet"]
    args += flag if flag[0] == "--xy" else ["--xy", "0", "0", *flag]
    assert main(args) == 2
    assert flag[0] in one_error_line(capsys.readouterr().err, "export")


@pytest.mark.parametrize("flag", [["--preset", "nan,0"], ["--map", "0=1e300,0"], ["--sample-rate", "-5"]])
def test_render_refuses_other_hostile_numbers(flag, song, tmp_path, capsys):
    assert main(["render", str(song), "-o", str(tmp_path / "o.wav"), "--demo", "--quiet", *flag]) == 2
    one_error_line(capsys.readouterr().err, "render")


# ---------------------------------------------------------------- 2. crafted JSON in preset and grid files

CRAFTED = {
    "deep": '{"kind": "pgesam-synth-preset", "name": "Deep", "x": 0, "y": 0, "notes": ' + "[" * 100000 + "]" * 100000 + "}",
    "bigint": '{"kind": "pgesam-synth-preset", "name": "Big", "x": ' + "9" * 5000 + ', "y": 0}',
    "hugefloat": '{"kind": "pgesam-synth-preset", "name": "Huge", "x": 1' + "0" * 400 + '.0, "y": 0}',
    "inf": '{"kind": "pgesam-synth-preset", "name": "Inf", "x": 1e999, "y": 0}',
    "nan": '{"kind": "pgesam-synth-preset", "name": "NaN", "x": NaN, "y": 0}',
    "far": '{"kind": "pgesam-synth-preset", "name": "Far", "x": 1e300, "y": 0}',
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_preset_file_gives_an_error_naming_the_file(kind, tmp_path):
    path = write(tmp_path / f"{kind}.json", CRAFTED[kind].encode())
    with pytest.raises(PresetError) as caught:
        read_preset(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_crafted_presets_are_skipped_and_the_commands_still_work(tmp_path, song, capsys):
    user = tmp_path / "config" / "pgesam-synth" / "presets"
    user.mkdir(parents=True)
    for kind, text in CRAFTED.items():
        write(user / f"{kind}.json", text.encode())
    write_preset(Preset("Good", Timbre(0.1, 0.2)), user / "good.json")
    library = PresetLibrary(user_dir=user)
    assert len(library.errors) == len(CRAFTED) and library.find("Good") is not None
    assert main(["render", str(song), "-o", str(tmp_path / "o.wav"), "--demo", "--quiet", "--preset", "Good"]) == 0
    assert main(["export", "--preset", "Good", "--pitches", "60", "-o", str(tmp_path / "p"), "--demo",
                 "--quiet"]) == 0
    assert main(["export", "--preset", "Deep", "--pitches", "60", "-o", str(tmp_path / "q"), "--demo",
                 "--quiet"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_preset_coordinates_must_be_on_the_map(tmp_path):
    for x in (float("nan"), 1e300, -1e6):
        with pytest.raises(InputError, match="x"):
            write_preset(Preset("P", Timbre(x, 0.0)), tmp_path / "p.json")
        with pytest.raises(PresetError, match="x"):  # and a file holding one does not load
            Preset.from_dict({**Preset("P", Timbre(0.0, 0.0)).to_dict(), "x": x})
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("text", [CRAFTED["deep"], '{"size": ' + "9" * 5000 + "}", '{"size": 1e999}',
                                  '{"size": 3, "bounds": [[NaN, 1], [0, 1]], "pitches": [60], "sample_rate": 24000}',
                                  '{"size": 3, "bounds": [[0, 1], [0, 1e300]], "pitches": [60], "sample_rate": 24000}',
                                  '{"size": 100000000, "bounds": [[0, 1], [0, 1]], "pitches": [60], '
                                  '"sample_rate": 24000}',
                                  '{"size": 3, "bounds": [[0, 1], [0, 1]], "pitches": [600], "sample_rate": 24000}',
                                  "[]"])
def test_crafted_grid_json_disables_the_grid_with_a_log(text, tmp_path, caplog):
    from synth.engine.note_cache import GridStore

    store = GridStore("abc", tmp_path)
    store.dir.mkdir(parents=True)
    write(store.dir / "grid.json", text.encode())
    with caplog.at_level(logging.WARNING):
        assert store.spec is None
    assert str(store.dir / "grid.json") in caplog.text


# ---------------------------------------------------------------- 6. MIDI files

# 44 bytes: tempo 0xFFFFFF (16.8 s per beat), 1 tick per beat, a note-off 2^28 ticks later: 4.5e9 s of audio.
MEMORY_BOMB = smf(track(tempo(0xFFFFFF), *note(0, 0x0FFFFFFF)), division=1)


def test_the_44_byte_memory_bomb_is_refused_at_once(tmp_path, capsys):
    assert len(MEMORY_BOMB) == 44
    path = write(tmp_path / "bomb.mid", MEMORY_BOMB)
    started = time.perf_counter()
    with pytest.raises(MidiFileError, match="longer than"):
        read_midi(path)
    assert main(["render", str(path), "-o", str(tmp_path / "o.wav"), "--demo", "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err, "render")
    assert str(path) in line and "--max-minutes" in line
    assert time.perf_counter() - started < 5 and not (tmp_path / "o.wav").exists()


def test_the_length_cap_is_configurable(tmp_path, capsys):
    # 40 s of silence (96 ticks per beat at 120 bpm = 192 ticks per second), then one short note
    path = write(tmp_path / "late.mid", smf(track(*note(40 * 192, 48))))
    with pytest.raises(MidiFileError, match="longer than"):
        read_midi(path, max_seconds=30)
    assert read_midi(path, max_seconds=60).duration == pytest.approx(40.25)
    out = tmp_path / "late.wav"
    assert main(["render", str(path), "-o", str(out), "--demo", "--quiet", "--max-minutes", "0.5"]) == 2
    assert main(["render", str(path), "-o", str(out), "--demo", "--quiet", "--max-minutes", "1"]) == 0
    assert main(["render", str(path), "-o", str(out), "--demo", "--quiet", "--force", "--max-minutes", "nan"]) == 2


def test_a_file_too_big_is_refused(tmp_path):
    path = write(tmp_path / "big.mid", smf(track(*[e for _ in range(2000) for e in note(1, 1)])))
    with pytest.raises(MidiFileError, match="bytes"):
        read_midi(path, max_bytes=1000)


def test_a_zero_length_note_still_sounds(tmp_path):
    """Note on and off on the same tick (common in drum and arpeggiator exports): played as a short note, as
    FluidSynth does (its minimum note length is 10 ms), never dropped silently."""
    path = write(tmp_path / "zero.mid", smf(track(*note(0, 0), *note(96, 0, pitch=64))))
    notes = read_midi(path).notes()
    assert [n.pitch for n in notes] == [60, 64] and all(n.end - n.start >= 0.01 for n in notes)
    result = render_midi(path, None, SineNoteSource(), PIANO)
    assert result.peak_dbfs > -30
    second = result.audio[int(0.5 * result.sample_rate):int(0.6 * result.sample_rate)]
    assert 20 * np.log10(np.max(np.abs(second))) > -40


def test_tempo_zero_is_refused(tmp_path, capsys):
    path = write(tmp_path / "t0.mid", smf(track(tempo(0), *note(0, 96))))
    with pytest.raises(MidiFileError, match="tempo 0"):
        read_midi(path)
    assert main(["render", str(path), "-o", str(tmp_path / "o.wav"), "--demo", "--quiet"]) == 2
    assert str(path) in one_error_line(capsys.readouterr().err, "render")


def test_smpte_timed_files_play_at_their_frame_rate(tmp_path):
    """Division 0xE728: 25 frames per second x 40 ticks per frame = 1000 ticks per second; tempo is ignored."""
    division = ((256 - 25) << 8) | 40
    data = smf(track(tempo(250000), *note(1000, 500), *note(500, 250, pitch=67)), division=division)
    path = write(tmp_path / "smpte.mid", data)
    notes = read_midi(path).notes()
    assert [(n.pitch, round(n.start, 6), round(n.end, 6)) for n in notes] == [(60, 1.0, 1.5), (67, 2.0, 2.25)]
    result = render_midi(path, None, SineNoteSource(), PIANO)
    level = lambda t0, t1: np.max(np.abs(result.audio[int(t0 * 48000):int(t1 * 48000)]))  # noqa: E731
    assert level(0.0, 0.95) == 0.0 and level(1.1, 1.4) > 0.01


def test_smpte_29_97_drop_frame(tmp_path):
    division = ((256 - 29) << 8) | 100
    path = write(tmp_path / "df.mid", smf(track(*note(3000, 10)), division=division))
    assert read_midi(path).notes()[0].start == pytest.approx(1.001, abs=1e-9)  # 30 frames at 29.97 frames/s


@pytest.mark.parametrize("data", [smf(), smf(track()), smf(track(*note(0, 96)).replace(b"\x90", b"\x99")
                                                                 .replace(b"\x80", b"\x89"))])
def test_a_file_with_nothing_to_play_is_refused(data, tmp_path, capsys):
    """No tracks, an empty track, only drums: a silent WAV with exit code 0 would look like success."""
    path = write(tmp_path / "empty.mid", data)
    with pytest.raises(MidiFileError, match="no notes to play"):
        render_midi(path, None, SineNoteSource(), PIANO)
    assert main(["render", str(path), "-o", str(tmp_path / "o.wav"), "--demo", "--quiet"]) == 2
    assert str(path) in one_error_line(capsys.readouterr().err, "render")


def test_unreadable_midi_gives_exit_code_2(tmp_path, capsys):
    path = write(tmp_path / "bad.mid", b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00")  # 0 ticks per beat
    assert main(["render", str(path), "-o", str(tmp_path / "o.wav"), "--demo", "--quiet"]) == 2
    assert str(path) in one_error_line(capsys.readouterr().err, "render")


# ---------------------------------------------------------------- 8. rename, temp files, grid cache


class _Killed(BaseException):
    """Stands for SIGKILL at one point of a file operation: nothing after it runs, no cleanup handler either."""


def _kill_at(monkeypatch, point: int) -> list[str]:
    """Make the ``point``-th file-system change (replace, rename, unlink, fsync) die before it happens."""
    seen: list[str] = []
    for name in ("replace", "rename", "unlink", "fsync", "link"):
        real = getattr(os, name)

        def fake(*args, _real=real, _name=name, **kw):
            seen.append(_name)
            if len(seen) == point:
                raise _Killed(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(os, name, fake)
    return seen


def test_rename_never_leaves_two_presets_or_none(tmp_path, monkeypatch):
    """Killed at every step of a rename, the library afterwards holds the preset exactly once, under the old or
    the new name, with its sound intact."""
    point = 1
    while True:
        user = tmp_path / f"u{point}"
        library = PresetLibrary(user_dir=user, factory_dir=tmp_path / "none")
        library.save(Preset("Old", Timbre(0.25, -0.5, gain_db=-3.0)))
        library = PresetLibrary(user_dir=user, factory_dir=tmp_path / "none")
        with monkeypatch.context() as patch:
            seen = _kill_at(patch, point)
            try:
                library.rename("Old", "New")
                finished = True
            except _Killed:
                finished = False
        after = PresetLibrary(user_dir=user, factory_dir=tmp_path / "none")
        assert len(after.entries) == 1 and after.names()[0] in ("Old", "New"), (point, seen, after.names())
        assert (after.entries[0].preset.timbre.x, after.entries[0].preset.timbre.gain_db) == (0.25, -3.0)
        assert after.errors == []
        if finished:
            assert after.names() == ["New"]
            break
        point += 1
    assert point > 1  # the rename did touch the disk


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_files_are_cleaned_on_start(tmp_path, song):
    """Temp files of killed saves and renders (their process is gone) are removed when the library opens or the
    next render starts; a temp file of a process still running is left alone."""
    dead, alive = _dead_pid(), os.getpid()
    user = tmp_path / "user"
    user.mkdir()
    stale = [write(user / f".Keys.json.{dead}-abc.tmp", b"{"), write(tmp_path / f".out.wav.{dead}-xyz.tmp", b"RIFF")]
    old = write(user / ".Keys.json.k2j4x8ab.tmp", b"{")  # an older version's name: no pid, cleaned by age
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    busy = [write(user / f".Keys.json.{alive}-abc.tmp", b"{"), write(tmp_path / f".out.wav.{alive}-xyz.tmp", b"R")]
    foreign = write(user / "notes.tmp", b"mine")  # not a name we write: never touched
    grid = tmp_path / "grid" / "abc"
    grid.mkdir(parents=True)
    stale.append(write(grid / f".p_0_0.npy.{dead}-q.tmp", b"x"))
    busy.append(write(grid / f".p_0_1.npy.{alive}-q.tmp", b"x"))
    PresetLibrary(user_dir=user, factory_dir=tmp_path / "none")
    render_midi(song, tmp_path / "out.wav", SineNoteSource(), PIANO)
    GridStore("abc", tmp_path / "grid")
    assert not any(p.exists() for p in stale + [old])
    assert all(p.exists() for p in busy + [foreign])


def test_stale_export_staging_folders_are_cleaned(tmp_path):
    dead = _dead_pid()
    staging = tmp_path / f".pack.{dead}-abc.partial"
    staging.mkdir()
    write(staging / "half.wav", b"RIFF")
    export_notes(SineNoteSource(), ExportRequest(Timbre(0.0, 0.0), out_dir=tmp_path / "pack", pitches=(60,)))
    assert not staging.exists() and (tmp_path / "pack").is_dir()


def _grid(tmp_path):
    from synth.engine.note_cache import GridStore
    from synth.engine.prerender_cli import prerender

    source = SineNoteSource(pitch_range=(48, 52), duration=0.5)
    store = GridStore(source.hash, tmp_path)
    prerender(source, store, 2, progress=False)
    return source, store


@pytest.mark.parametrize("bad", ["1d", "rows", "nan", "dtype", "garbage"])
def test_a_broken_grid_entry_is_rejected_logged_and_rebuilt(bad, tmp_path, caplog):
    from synth.engine.note_cache import GridStore
    from synth.engine.prerender_cli import prerender

    source, store = _grid(tmp_path)
    good = np.load(store.path(0, 0))
    broken = {"1d": good[0], "rows": good[:2], "nan": np.full_like(good, np.nan), "dtype": good.astype(object),
              "garbage": None}[bad]
    if broken is None:
        write(store.path(0, 0), b"\x93NUMPY garbage")
    else:
        np.save(store.path(0, 0), broken, allow_pickle=True)
    fresh = GridStore(source.hash, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert fresh.load(0, 0) is None
    assert str(store.path(0, 0)) in caplog.text and not fresh.has(0, 0)
    assert prerender(source, fresh, 2, progress=False)["rendered"] == 1
    assert fresh.load(0, 0) is not None


def test_the_grid_thread_survives_nan_bounds_and_a_broken_entry(tmp_path):
    from synth.engine.buffers import BufferSlot
    from synth.engine.note_cache import GridStore, NoteCache
    from synth.engine.worker import GenerationWorker

    source, store = _grid(tmp_path)
    np.save(store.path(1, 1), np.zeros(3, dtype=np.float16))
    for meta in (None, {"bounds": [[float("nan"), 1.0], [0.0, 1.0]]}):
        if meta is not None:
            spec = json.loads((store.dir / "grid.json").read_text())
            (store.dir / "grid.json").write_text(json.dumps({**spec, **meta}))
        slots = [BufferSlot() for _ in range(128)]
        worker = GenerationWorker(source, NoteCache(48000), slots, grid=GridStore(source.hash, tmp_path))
        worker.start()
        try:
            for x, y in ((10.0, 10.0), (-10.0, -10.0), (0.0, 0.0)):  # the broken corner, a good one, between
                worker.request(x, y)
                time.sleep(0.3)
            assert worker.threads_alive()
        finally:
            worker.stop()
