"""The whole instrument on the real bus: the window's engine plays through JACK into a recorder, from the computer
keyboard, the on-screen keyboard and a MIDI keyboard (the demo source: exact pitches, no model needed)."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from tests.conftest import unique_name
from tests.jackbus import Recorder, cents, dominant_tone, jack_output_device, midi_to_hz, new_output_ports, output_ports

pytestmark = pytest.mark.jack


@pytest.fixture
def live(jack_server, qtbot, tmp_path, library):
    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow

    before = output_ports()
    rec = None
    adapter = open_engine(OpenOptions(bundle=tmp_path / "no-model", device=jack_output_device(), use_grid=False,
                                      midi_client=unique_name("pgesamgui")))
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    window.show()
    try:
        adapter.start()
        assert adapter.audio_error is None, adapter.audio_error
        assert adapter.engine.midi_running, "the engine's MIDI input did not open"
        # the recorder (a Python process callback) opens after the engine's MIDI clients: python-rtmidi opens its
        # JACK clients holding the GIL, which an active Python-callback client can deadlock (once: "MIDI is not
        # running" in this fixture; see test_live_morph_on_jack)
        rec = Recorder(name=unique_name("guirec"))
        rec.connect_from(*new_output_ports(before)[:2])
        rec.start()
        window.pad.setFocus()
        yield window, adapter, rec
    finally:
        window.close()
        adapter.close()
        if rec is not None:
            rec.close()


def hold(qtbot, adapter, pitch, press, release, rec, seconds=0.35):
    """Wait until the pitch's notes are generated, then play it and return its onset frame."""
    qtbot.waitUntil(lambda: adapter.engine.slots[pitch].buffer is not None, timeout=30000)
    onset = rec.frame_time
    press()
    qtbot.wait(int(seconds * 1000))
    release()
    return onset


def assert_heard(rec, onset, pitch, seconds=0.35):
    rate = rec.samplerate
    start, end = onset + int(0.1 * rate), onset + int(seconds * rate)
    deadline = time.monotonic() + 2
    while rec.frame_time < end + rec.client.blocksize and time.monotonic() < deadline:
        time.sleep(0.02)
    tone = dominant_tone(rec.audio(start, end), rate)
    assert tone.rms > 0.005, tone
    assert abs(cents(tone.frequency, midi_to_hz(pitch))) < 10, (pitch, tone)


def _computer_and_on_screen_keys(window, adapter, rec, qtbot):
    onset = hold(qtbot, adapter, 48, lambda: qtbot.keyPress(window.pad, Qt.Key_A),
                 lambda: qtbot.keyRelease(window.pad, Qt.Key_A), rec)
    assert_heard(rec, onset, 48)

    centre = window.keyboard.key_rect(64).center().toPoint()
    onset = hold(qtbot, adapter, 64, lambda: qtbot.mousePress(window.keyboard, Qt.LeftButton, pos=centre),
                 lambda: qtbot.mouseRelease(window.keyboard, Qt.LeftButton, pos=centre), rec)
    assert_heard(rec, onset, 64)


def test_computer_keyboard_and_on_screen_keys_sound(live, qtbot):
    window, adapter, rec = live
    _computer_and_on_screen_keys(window, adapter, rec, qtbot)


def test_midi_keyboard_note_lights_its_key_and_sounds(live, qtbot, keyboard):
    window, adapter, rec = live
    keyboard.connect(adapter.virtual_port_name())
    qtbot.wait(300)
    qtbot.waitUntil(lambda: adapter.engine.slots[67].buffer is not None, timeout=30000)
    keyboard.note_on(67, 100)
    qtbot.waitUntil(lambda: 67 in window.keyboard.held, timeout=5000)  # lit once the engine has the note
    onset = rec.frame_time
    qtbot.wait(350)
    keyboard.note_off(67)
    assert_heard(rec, onset, 67)
    qtbot.waitUntil(lambda: 67 not in window.keyboard.held, timeout=5000)


def test_midi_keyboard_after_computer_and_on_screen_keys(live, qtbot, keyboard):
    window, adapter, rec = live
    _computer_and_on_screen_keys(window, adapter, rec, qtbot)
    keyboard.connect(adapter.virtual_port_name())
    qtbot.wait(300)
    shown = []
    onset = hold(qtbot, adapter, 67, lambda: keyboard.note_on(67, 100),
                 lambda: (shown.append(67 in window.keyboard.held), keyboard.note_off(67)), rec)
    assert shown == [True], "a note held on the MIDI keyboard lights the on-screen key"
    assert_heard(rec, onset, 67)


def test_an_unusable_sample_rate_is_refused_and_the_old_audio_plays_on(live, qtbot):
    window, adapter, rec = live
    before = output_ports()
    error = adapter.apply_settings(samplerate=44100)  # the JACK server runs at 48 kHz
    assert error and "44100" in error, error
    assert adapter.engine.sample_rate == 48000 and adapter.audio_error is None
    # the engine reopened its stream: new PortAudio ports, or (the audio host is a new process, whose PortAudio
    # client takes the name the old one freed) ports of the same names, which the recorder must connect again
    try:
        ports = new_output_ports(before, timeout=2.0)
    except TimeoutError:
        ports = sorted(p for p in output_ports() if p.startswith("PortAudio"))
    rec.connect_from(*ports[:2])
    onset = hold(qtbot, adapter, 48, lambda: qtbot.keyPress(window.pad, Qt.Key_A),
                 lambda: qtbot.keyRelease(window.pad, Qt.Key_A), rec)
    assert_heard(rec, onset, 48)


def test_a_midi_keyboard_chosen_in_settings_plays(live, qtbot):
    import rtmidi

    from synth.gui.settings import SettingsDialog

    window, adapter, rec = live
    name = unique_name("hwkbd")
    device = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    device.open_virtual_port("out")  # stands for a hardware keyboard's output port
    try:
        dialog = SettingsDialog(adapter, window)
        qtbot.addWidget(dialog)
        dialog._fill_midi_ports()
        index = next(i for i in range(dialog.midi_combo.count()) if name in dialog.midi_combo.itemText(i))
        dialog.midi_combo.setCurrentIndex(index)
        assert dialog.apply(), dialog.error_label.text()
        qtbot.wait(300)
        device.send_message([0x90, 72, 100])
        qtbot.waitUntil(lambda: 72 in window.keyboard.held, timeout=3000)
        device.send_message([0x80, 72, 0])
        qtbot.waitUntil(lambda: 72 not in window.keyboard.held, timeout=3000)
    finally:
        device.close_port()
        del device
