"""Playing: on-screen keys and the computer keyboard send notes to the engine; MIDI-held notes are shown."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from synth.engine.midi_io import NOTE_OFF, NOTE_ON


def note_events(adapter):
    return [(kind, pitch) for kind, pitch, _ in adapter.engine._events if kind in (NOTE_ON, NOTE_OFF)]


def test_clicking_a_key_plays_and_releases_it(window, adapter, qtbot):
    keyboard = window.keyboard
    centre = keyboard.key_rect(60).center().toPoint()
    qtbot.mousePress(keyboard, Qt.LeftButton, pos=centre)
    assert 60 in adapter.held_notes()
    assert keyboard.held >= {60}
    block = np.zeros((adapter.engine.block_size, 2), dtype=np.float32)
    adapter.engine.process_block(block)
    assert adapter.engine.mixer.active_voices == 1, "the engine has a voice for the clicked key"
    qtbot.mouseRelease(keyboard, Qt.LeftButton, pos=centre)
    assert 60 not in adapter.held_notes()
    assert note_events(adapter) == [(NOTE_OFF, 60)], "the callback consumed the note-on; the note-off is queued"


def test_clicked_velocity_grows_towards_the_front_of_the_key(window, adapter, qtbot):
    keyboard = window.keyboard
    rect = keyboard.key_rect(62)
    assert keyboard.velocity_at(62, rect.top() + 2) < keyboard.velocity_at(62, rect.bottom() - 2)


def test_typing_a_plays_c3_and_auto_repeat_is_ignored(window, adapter, qtbot):
    qtbot.keyPress(window.pad, Qt.Key_A)
    repeat = QKeyEvent(QEvent.KeyPress, Qt.Key_A, Qt.NoModifier, "a", True)
    QApplication.sendEvent(window.pad, repeat)
    qtbot.keyPress(window.pad, Qt.Key_W)
    qtbot.keyRelease(window.pad, Qt.Key_A)
    qtbot.keyRelease(window.pad, Qt.Key_W)
    assert note_events(adapter) == [(NOTE_ON, 48), (NOTE_ON, 49), (NOTE_OFF, 48), (NOTE_OFF, 49)]


def test_octave_keys_shift_and_release_held_notes(window, adapter, qtbot):
    qtbot.keyPress(window.pad, Qt.Key_K)
    qtbot.keyClick(window.pad, Qt.Key_X)
    assert note_events(adapter) == [(NOTE_ON, 60), (NOTE_OFF, 60)]
    qtbot.keyPress(window.pad, Qt.Key_A)
    assert 60 in adapter.held_notes()
    qtbot.keyClick(window.pad, Qt.Key_Z)
    qtbot.keyClick(window.pad, Qt.Key_Z)
    qtbot.keyPress(window.pad, Qt.Key_A)
    assert adapter.held_notes() == {36}
    assert "C2" in window.sound_panel.octave_label.text()


def test_focus_loss_releases_computer_keys(window, adapter, qtbot):
    qtbot.keyPress(window.pad, Qt.Key_D)
    assert adapter.held_notes() == {52}
    QApplication.sendEvent(QApplication.instance(), QEvent(QEvent.ApplicationDeactivate))
    assert adapter.held_notes() == set()


def test_letters_typed_into_a_text_field_do_not_play(window, adapter, qtbot, monkeypatch):
    import gui.main_window

    spin = window.sound_panel.gain_spin
    monkeypatch.setattr(gui.main_window.QApplication, "focusWidget", staticmethod(lambda: spin))
    qtbot.keyPress(spin, Qt.Key_A)
    assert adapter.held_notes() == set()


def test_notes_held_from_midi_are_shown(window, adapter, qtbot):
    adapter.engine._track((NOTE_ON, 67, 90))  # what the engine's MIDI thread records for a keyboard note
    qtbot.waitUntil(lambda: 67 in window.keyboard.held, timeout=1000)
    adapter.engine._track((NOTE_OFF, 67, 0))
    qtbot.waitUntil(lambda: 67 not in window.keyboard.held, timeout=1000)
