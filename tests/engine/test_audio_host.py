"""The audio host (synth.engine.audio_host): the callback, MIDI, mixer and limiter in a process of their own.

The point of it, tested on the real JACK bus: the app's interpreter held for 0.3 s (a C call that keeps the lock)
silences an in-process callback's blocks, and does not touch the host's. Then what the host
must keep of the in-process engine: buffers that change under a held note, each audio array sent once, a device
that does not open raising the same error, and a host that dies showing up as lost audio.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import unique_name
from tests.jackbus import Recorder, dominant_tone, jack_output_device, new_output_ports, output_ports


def test_the_environment_variable_chooses_the_process(monkeypatch):
    from synth.engine.audio_host import audio_process_default

    monkeypatch.delenv("SYNTH_AUDIO_PROCESS", raising=False)
    assert audio_process_default(True) is True and audio_process_default(False) is False
    monkeypatch.setenv("SYNTH_AUDIO_PROCESS", "0")
    assert audio_process_default(True) is False
    monkeypatch.setenv("SYNTH_AUDIO_PROCESS", "1")
    assert audio_process_default(False) is True
    monkeypatch.setenv("SYNTH_AUDIO_PROCESS", "yes")
    with pytest.raises(ValueError, match="SYNTH_AUDIO_PROCESS"):
        audio_process_default(True)


def test_a_mirrored_slot_reports_each_new_buffer_and_nothing_else():
    from synth.engine.audio_host import MirroredSlot

    seen = []
    slot = MirroredSlot(layer=1, pitch=60)
    slot.buffer = "before any listener"  # no listener yet: nothing to report
    slot.listener = seen.append
    slot.tag = ("point",)
    assert seen == []
    slot.buffer = None
    slot.buffer = "note"
    assert seen == [slot, slot] and (slot.layer, slot.pitch) == (1, 60)


def test_the_host_imports_neither_torch_nor_qt():
    """Its interpreter is the callback's: nothing heavy may load there (no torch threads, no Qt event loop)."""
    code = ("import sys, synth.engine.audio_host, synth.engine.audio_io, synth.engine.midi_io; "
            "print(sorted(m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


# ---------------------------------------------------------------------------------------------------- on JACK
def _engine(audio_process: bool, block_size: int = 1024, **kwargs):
    from synth.engine.engine import Engine
    from synth.engine.sources import SineNoteSource

    return Engine(SineNoteSource(pitch_range=(57, 64)), sample_rate=48000, block_size=block_size,
                  device=kwargs.pop("device", jack_output_device()), midi_client=unique_name("host"),
                  use_grid=False, audio_process=audio_process, **kwargs)


def _started(engine, rec: Recorder | None = None):
    before = output_ports()
    engine.start()
    if rec is not None:
        rec.connect_from(*new_output_ports(before)[:2])
    deadline = time.monotonic() + 30
    while not engine.generation_idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.generation_idle(), engine.meters()
    return engine


# The app stand-in: a process that plays a held note through the engine and, when told, holds its own interpreter
# for STALL_S (a libc sleep called through ctypes.PyDLL keeps the lock). The recorder lives in the test process, so
# only the engine's process is stalled.
STALL_S = 0.3
APP = """
import ctypes, sys, time
from synth.engine.engine import Engine
from synth.engine.sources import SineNoteSource
engine = Engine(SineNoteSource(pitch_range=(57, 64)), sample_rate=48000, block_size=1024, device=int(sys.argv[2]),
                midi=False, use_grid=False, audio_process=sys.argv[1] == "1")
engine.start()
while not engine.generation_idle():
    time.sleep(0.05)
engine.note_on(60, 100)
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "stall":
        ctypes.PyDLL(None).usleep(int(float(sys.argv[3]) * 1e6))
        print("stalled", flush=True)
    else:
        break
engine.stop()
"""


def _block_rms(signal: np.ndarray, block: int = 1024) -> np.ndarray:
    n = len(signal) // block
    return np.sqrt(np.mean(signal[: n * block].reshape(n, block) ** 2, axis=1))


@pytest.mark.jack
@pytest.mark.parametrize("audio_process", [False, True], ids=["in_process", "audio_host"])
def test_a_stalled_app_interpreter_silences_only_an_in_process_callback(jack_server, audio_process):
    rec = Recorder(name=unique_name("stallrec"))
    before = output_ports()
    app = subprocess.Popen([sys.executable, "-c", APP, "1" if audio_process else "0", str(jack_output_device()),
                            str(STALL_S)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline().strip() == "ready"
        rec.connect_from(*new_output_ports(before)[:2])
        rec.start()
        time.sleep(0.5)
        start = rec.frame_time
        app.stdin.write("stall\n")
        app.stdin.flush()
        assert app.stdout.readline().strip() == "stalled"
        time.sleep(0.3)
        end = rec.frame_time
        app.stdin.write("quit\n")
        app.stdin.flush()
        app.wait(timeout=20)
    finally:
        rec.close()
        if app.poll() is None:
            app.kill()
    levels = _block_rms(rec.audio(start, end))
    typical = float(np.median(levels))
    assert typical > 0.01 and end - start > (STALL_S + 0.2) * rec.samplerate, (typical, end - start)
    if audio_process:  # the note plays on through the stall (a 0.3 s stall spans 14 blocks; one may fall to a stall
        # of the machine itself, which a C client gets too: see README, "bench app")
        assert (levels < 0.3 * typical).sum() <= 1, np.round(levels / typical, 2)
    else:  # the control: the same stall silences blocks of a callback that needs that interpreter
        assert (levels < 0.05 * typical).sum() >= 3, np.round(levels / typical, 2)


@pytest.mark.jack
def test_a_held_note_follows_a_new_buffer_in_the_host(jack_server):
    """The worker's slot store reaches the host's voices: a held A4 whose slot gets a C5 tone sounds C5."""
    from synth.engine.buffers import prepare_note_buffer

    rec = Recorder(name=unique_name("hostrec"))
    engine = _engine(True)
    try:
        _started(engine, rec)
        rec.start()
        rate = rec.samplerate
        engine.note_on(69, 100)
        time.sleep(0.6)
        start = rec.frame_time
        time.sleep(0.3)
        first = dominant_tone(rec.audio(start, start + int(0.25 * rate)), rate)
        t = np.arange(4 * 24000) / 24000
        tone = (0.3 * np.sin(2 * np.pi * 523.25 * t)).astype(np.float32)
        slot = engine.slot_for(69, 100)
        slot.buffer = prepare_note_buffer(tone, 24000, 48000, 69)
        time.sleep(0.3)
        start = rec.frame_time
        time.sleep(0.3)
        second = dominant_tone(rec.audio(start, start + int(0.25 * rate)), rate)
        engine.note_off(69)
    finally:
        rec.close()
        engine.stop()
    assert abs(first.frequency - 440.0) < 3.0, first
    assert abs(second.frequency - 523.25) < 3.0 and second.rms > 0.01, second


@pytest.mark.jack
def test_audio_shared_by_several_slots_is_sent_once_and_forgotten_when_unplayed(jack_server):
    from synth.engine.buffers import stand_in

    engine = _started(_engine(True))
    try:
        host = engine._host
        slots = [s for layer in engine.layer_slots for s in layer]
        note = next(s.buffer for s in slots if s.buffer is not None)
        notes = len({id(s.buffer.data) for s in slots if s.buffer is not None})
        deadline = time.monotonic() + 10
        while len(host._sent) < notes and time.monotonic() < deadline:  # the feed thread catches up
            time.sleep(0.02)
        before = len(host._sent)
        assert before == notes
        for pitch in (20, 21, 22):  # three keys borrow one note (as the stand-ins of velocity layers do)
            engine.layer_slots[0][pitch].buffer = stand_in(note, 0.5)
        time.sleep(0.2)
        assert len(host._sent) == before  # that audio was in the host already
        live = {id(s.buffer.data) for s in slots if s.buffer is not None}
        assert set(host._sent) >= live
        for level in np.linspace(0.1, 0.9, 20):  # a drag: every preview is new audio for the same slot
            engine.layer_slots[0][20].buffer = replace(note, data=note.data * np.float32(level))
            time.sleep(0.01)
        time.sleep(0.2)
        live = {id(s.buffer.data) for s in slots if s.buffer is not None}
        assert set(host._sent) == live  # what no slot plays any more is forgotten, here and in the host
    finally:
        engine.stop()


@pytest.mark.jack
def test_a_device_that_does_not_open_raises_the_same_error_with_the_host(jack_server):
    from synth.engine.audio_io import AudioDeviceError

    engine = _engine(True, device="no such output device")
    try:
        with pytest.raises(AudioDeviceError, match="no such output device") as caught:
            engine.start()
        assert "available" in str(caught.value)
        assert engine.midi_running and engine.audio is None  # MIDI had opened; the GUI then keeps it off the blame
    finally:
        engine.stop()


@pytest.mark.jack
def test_a_host_that_dies_is_reported_as_lost_audio(jack_server):
    engine = _started(_engine(True))
    try:
        assert not engine.audio_lost()
        pid = engine._host._proc.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not engine.audio_lost() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.audio_lost()
        t0 = time.monotonic()
        engine.abandon_audio()
        assert time.monotonic() - t0 < 2.0 and engine.audio is None
        meters = engine.meters()  # readable without a host
        assert meters["xruns"] == 0 and meters["voices"] == 0
        engine.note_on(60, 100)  # goes nowhere, raises nothing
    finally:
        engine.stop()
