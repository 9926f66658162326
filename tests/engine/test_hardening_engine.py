"""Hardening of the live instrument (issue 16): faults from outside must not leave stuck notes, silent failures or
a process that will not quit.

- an unterminated SysEx from a keyboard must not hold back the note-offs and CC123 that follow it (item 5);
- a keyboard unplugged while a key is held must release that key (item 8);
- worker errors reach ``synth play``'s output once and the GUI's status line (item 7);
- ``synth play --gain-db`` refuses NaN, inf and absurd values before it opens anything.

The JACK server loss of ``synth play`` (item 3) is in test_play_server_loss.py: it runs its own server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from synth.engine.midi_io import wait_for as _wait  # polls every 0.02 s
from tests.conftest import unique_name
from tests.jackbus import jack_output_device

SETTLE = 0.3


@pytest.fixture(scope="module")
def engine(jack_server):
    from synth.engine.engine import Engine
    from synth.engine.sources import SineNoteSource

    eng = Engine(SineNoteSource(pitch_range=(48, 84)), sample_rate=48000, block_size=1024,
                 device=jack_output_device(), midi_client=unique_name("pgesamhard"), use_grid=False)
    eng.start()
    try:
        assert _wait(lambda: eng.worker.idle(), 30), eng.meters()
        yield eng
    finally:
        eng.stop()


@pytest.mark.jack
def test_unterminated_sysex_leaves_no_stuck_note(engine, keyboard):
    """rtmidi's JACK input holds back every event after an F0 that no F7 ends; CC123 must still stop the note."""
    keyboard.connect(engine.midi_port_name)
    time.sleep(SETTLE)
    keyboard.note_on(60, 100)
    assert _wait(lambda: engine.held_notes() == [60], 2.0)
    keyboard.send(0xF0, 0x7D, 0x01)  # a SysEx start that nothing ends
    keyboard.note_off(60)
    keyboard.send(0xB0, 123, 0)  # all notes off
    try:
        assert _wait(lambda: engine.held_notes() == [] and engine.meters()["voices"] == 0, 1.5), \
            f"stuck: held {engine.held_notes()}, voices {engine.meters()['voices']}"
    finally:
        engine.panic()
    keyboard.note_on(64, 100)  # and the keyboard still plays afterwards
    assert _wait(lambda: engine.held_notes() == [64], 1.0)
    keyboard.note_off(64)
    assert _wait(lambda: engine.held_notes() == [], 1.0)


@pytest.mark.jack
def test_unplugged_keyboard_releases_its_held_notes(engine):
    import rtmidi

    name = unique_name("unplug")
    kbd = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    kbd.open_virtual_port("out")
    try:
        engine.connect_midi(f"{name}:out")
        time.sleep(SETTLE)
        kbd.send_message([0xB0, 64, 127])  # the pedal is down too: the release must not hang on it
        kbd.send_message([0x90, 62, 100])
        kbd.send_message([0x90, 65, 100])
        assert _wait(lambda: engine.held_notes() == [62, 65], 2.0)
    finally:
        kbd.close_port()
        kbd.delete()  # unplugged while the keys and the pedal are down
    try:
        assert _wait(lambda: engine.held_notes() == [] and engine.meters()["voices"] == 0, 3.0), \
            f"still sounding after unplug: held {engine.held_notes()}, voices {engine.meters()['voices']}"
        assert not engine.mixer.sustain_down
    finally:
        engine.midi.disconnect(f"{name}:out")
        engine.panic()


def test_worker_errors_are_reported_once_by_play_and_by_the_gui_adapter():
    """A note source that fails (a real one: 10^9 s notes cannot be allocated) must be said, not show 0/n forever."""
    from synth.gui.engine_adapter import EngineAdapter
    from synth.engine.engine import Engine
    from synth.engine.play_cli import StatusReporter
    from synth.engine.sources import SineNoteSource

    engine = Engine(SineNoteSource(pitch_range=(60, 61), duration=1e9), midi=False, use_grid=False)
    engine.worker.start()
    engine.worker.request(0.0, 0.0)
    try:
        assert _wait(lambda: engine.worker.error_count > 0, 10.0)
        reporter = StatusReporter(engine)
        first = reporter.new_errors()
        assert len(first) == 1 and "note generation failed" in first[0], first
        engine.worker.request(0.1, 0.0)  # another point fails the same way: said once, not again
        assert _wait(lambda: engine.worker.error_count > 1, 10.0)
        assert reporter.new_errors() == []
        adapter = EngineAdapter(engine, audio=False)
        adapter.poll_meters()
        message = adapter.take_error()
        assert message and "Generation problem" in message and "SineNoteSource" in message, message
    finally:
        engine.worker.stop()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1000", "-1e9"])
def test_play_refuses_a_gain_that_is_not_finite_or_in_range(value):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "synth", "play", "--demo", f"--gain-db={value}"],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, JACK_NO_START_SERVER="1"))
    assert proc.returncode == 2, proc.stderr
    assert "--gain-db" in proc.stderr and ("finite" in proc.stderr or "range" in proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 30
