"""Playing: on-screen keys and the computer keyboard send notes to the engine; MIDI-held notes are shown."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from synth.engine.midi_io import NOTE_OFF, NOTE_ON


def note_events(adapter):
    return [(kind, pitch) for kind, pitch, _ in adapter.engine.pending_events() if kind in (NOTE_ON, NOTE_OFF)]


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
    import synth.gui.main_window

    spin = window.sound_panel.gain_spin
    monkeypatch.setattr(synth.gui.main_window.QApplication, "focusWidget", staticmethod(lambda: spin))
    qtbot.keyPress(spin, Qt.Key_A)
    assert adapter.held_notes() == set()


def test_notes_held_from_midi_are_shown(window, adapter, qtbot):
    adapter.engine.receive_midi((NOTE_ON, 67, 90))  # as a note from a MIDI keyboard
    qtbot.waitUntil(lambda: 67 in window.keyboard.held, timeout=1000)
    adapter.engine.receive_midi((NOTE_OFF, 67, 0))
    qtbot.waitUntil(lambda: 67 not in window.keyboard.held, timeout=1000)


# ---------------------------------------------------------------- issue 18: the whole keyboard


def key_colour(keyboard, pitch):
    """Colour painted at the lower part of a key (below the black keys for white ones)."""
    from PySide6.QtGui import QColor

    image = keyboard.grab().toImage()
    rect = keyboard.key_rect(pitch)
    point = rect.center() if keyboard.is_black_key(pitch) else rect.center() + _down(rect.height() * 0.3)
    return QColor(image.pixel(point.toPoint()))


def _down(pixels):
    from PySide6.QtCore import QPointF

    return QPointF(0, pixels)


def test_the_keyboard_shows_the_whole_range_of_an_88_key_model(qtbot):
    from synth.gui.keyboard import PianoKeyboard

    keyboard = PianoKeyboard(36, 84)
    qtbot.addWidget(keyboard)
    keyboard.set_model_range(21, 108)
    assert (keyboard.low, keyboard.high) == (21, 108) and len(keyboard.keys()) == 88
    keyboard.resize(1100, 110)
    keyboard.show()
    qtbot.waitExposed(keyboard)
    assert keyboard.visible_range() == (21, 108)  # all 88 keys fit a wide window
    for pitch in (21, 22, 60, 107, 108):
        rect = keyboard.key_rect(pitch)
        assert 0 <= rect.left() and rect.right() <= keyboard.width() + 0.5
        assert keyboard.pitch_at(rect.center().x(), rect.center().y()) == pitch


def test_a_narrow_keyboard_scrolls_and_a_wider_one_shows_more_octaves(qtbot):
    from synth.gui.keyboard import MIN_WHITE_KEY_WIDTH, PianoKeyboard

    keyboard = PianoKeyboard(21, 108)
    qtbot.addWidget(keyboard)
    keyboard.show()
    shown = {}
    for width in (300, 600, 900):
        keyboard.resize(width, 110)
        qtbot.waitUntil(lambda: keyboard.width() == width)
        low, high = keyboard.visible_range()
        shown[width] = high - low
        assert keyboard.white_key_width() >= MIN_WHITE_KEY_WIDTH
        assert low <= keyboard.marked_base <= high  # the computer keys' octave stays in view
    assert shown[300] < shown[600] < shown[900]
    keyboard.resize(300, 110)
    qtbot.waitUntil(lambda: keyboard.width() == 300)
    keyboard.scroll_octaves(20)  # as far up as it goes
    assert keyboard.visible_range()[1] == 108
    rect = keyboard.key_rect(108)
    qtbot.mousePress(keyboard, Qt.LeftButton, pos=rect.center().toPoint())
    with qtbot.waitSignal(keyboard.noteOff):
        qtbot.mouseRelease(keyboard, Qt.LeftButton, pos=rect.center().toPoint())


def test_a_held_note_out_of_view_scrolls_into_view(qtbot):
    from synth.gui.keyboard import PianoKeyboard

    keyboard = PianoKeyboard(21, 108)
    qtbot.addWidget(keyboard)
    keyboard.resize(300, 110)
    keyboard.show()
    qtbot.waitUntil(lambda: keyboard.width() == 300)
    assert not keyboard.is_visible_key(21)
    keyboard.set_held({21})
    assert keyboard.is_visible_key(21)


def test_midi_notes_anywhere_in_the_range_light_up(window, adapter, qtbot):
    from synth.gui.keyboard import HELD_COLOUR

    low, high = adapter.pitch_range
    keyboard = window.keyboard
    assert keyboard.low <= low and high <= keyboard.high
    for pitch in (low, (low + high) // 2, high):
        adapter.engine.receive_midi((NOTE_ON, pitch, 90))
        qtbot.waitUntil(lambda: pitch in keyboard.held, timeout=1000)
        assert keyboard.is_visible_key(pitch)
        assert key_colour(keyboard, pitch) == HELD_COLOUR
        adapter.engine.receive_midi((NOTE_OFF, pitch, 0))
        qtbot.waitUntil(lambda: pitch not in keyboard.held, timeout=1000)
        assert key_colour(keyboard, pitch) != HELD_COLOUR


def test_the_window_keyboard_covers_an_88_key_source(qtbot, library, user_config):
    from synth.gui.engine_adapter import EngineAdapter
    from synth.gui.main_window import MainWindow
    from synth.engine.engine import Engine
    from synth.engine.sources import SineNoteSource

    adapter = EngineAdapter(Engine(SineNoteSource(pitch_range=(21, 108)), midi=False, use_grid=False), audio=False)
    try:
        window = MainWindow(adapter, library)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        assert (window.keyboard.low, window.keyboard.high) == (21, 108)
        assert window.keyboard.visible_range() == (21, 108)  # the default window is wide enough for 88 keys
    finally:
        adapter.close()


def test_the_wheel_scrolls_a_narrow_keyboard(qtbot):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent

    from synth.gui.keyboard import PianoKeyboard

    keyboard = PianoKeyboard(21, 108)
    qtbot.addWidget(keyboard)
    keyboard.resize(300, 110)
    keyboard.show()
    qtbot.waitUntil(lambda: keyboard.width() == 300)
    before = keyboard.visible_range()
    wheel = QWheelEvent(QPointF(50, 50), QPointF(50, 50), QPoint(), QPoint(0, 120), Qt.NoButton, Qt.NoModifier,
                        Qt.NoScrollPhase, False)
    QApplication.sendEvent(keyboard, wheel)
    after = keyboard.visible_range()
    assert after[0] > before[0] and after[1] > before[1]


def test_export_dialog_offers_the_models_whole_range(window, adapter):
    from synth.gui.export_dialogs import ExportDialog

    low, high = adapter.pitch_range
    dialog = ExportDialog(window)
    assert dialog.pitches_edit.text() == f"{low}-{high}"
    assert dialog.request().pitches == tuple(range(low, high + 1))


def test_export_and_render_dialogs_take_the_windows_timbre(window, adapter):
    """Both dialogs use the timbre as a preset keeps it: the pad's point to 4 decimals, the sound panel's values."""
    from synth.gui.export_dialogs import ExportDialog, RenderDialog

    window.sound_panel.gain_spin.setValue(-7.5)
    window.sound_panel.release_spin.setValue(1230.0)
    timbre = window.preset_timbre()
    assert timbre.point == tuple(round(v, 4) for v in window.pad.point) and timbre.gain_db == -7.5
    export = ExportDialog(window)
    export.name_edit.setText("x" * 200)  # a file name, not a preset name: no preset's length limit applies
    request = export.request()
    assert request.timbre == timbre and request.level_db == -7.5 and request.name == "x" * 200
    render = RenderDialog(window)
    render.map_combo.setCurrentIndex(render.map_combo.findData("current"))
    everything = render.program_map().everything
    assert everything.name == "current timbre" and everything.timbre == timbre
