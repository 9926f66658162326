"""Issue 17, the preset workflow: a "modified" mark, switching keeps the edit (undo brings it back), factory presets
protected and revertible, undo/redo of pad moves and edits (Ctrl+Z / Ctrl+Shift+Z), A/B compare, skipped files named."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from synth.gui.main_window import MainWindow
from synth.presets import Preset, PresetLibrary
from synth.timbre import Timbre


def pixel_of(pad, x: float, y: float) -> QPoint:
    return pad.mapFromScene(pad.plotItem.vb.mapViewToScene(QPointF(x, y)))


def inside(pad, fx: float, fy: float) -> tuple[float, float]:
    xmin, xmax, ymin, ymax = pad.extent
    return xmin + fx * (xmax - xmin), ymin + fy * (ymax - ymin)


def undo(qtbot, window):
    qtbot.keyClick(window.pad, Qt.Key_Z, Qt.ControlModifier)


def redo(qtbot, window):
    qtbot.keyClick(window.pad, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)


def factory_names(library):
    return [e.name for e in library.entries if not e.is_user]


def test_a_modified_preset_is_marked(window, qtbot):
    bar = window.preset_bar
    name = bar.current_name
    assert name and not bar.modified and not bar.modified_label.isVisible()
    gain = window.sound_panel.gain_spin.value()
    window.sound_panel.gain_spin.setValue(gain - 2.0)
    assert bar.modified and bar.modified_label.isVisible()
    assert window.windowTitle().endswith("*")
    window.sound_panel.gain_spin.setValue(gain)  # back to what the preset says: not modified any more
    assert not bar.modified and not window.windowTitle().endswith("*")
    window.pad.set_point(*inside(window.pad, 0.1, 0.1))
    assert bar.modified


def test_switching_presets_keeps_the_edit_in_undo(window, qtbot):
    bar = window.preset_bar
    first = bar.current_name
    window.sound_panel.gain_spin.setValue(-7.5)
    edited_point = inside(window.pad, 0.2, 0.8)
    window.pad.set_point(*edited_point)
    window.pad.moveFinished.emit("drag")
    other = next(name for name in factory_names(bar.library) if name != first)
    bar.load(other)  # no question asked: browsing presets while playing must not be interrupted
    assert bar.current_name == other and not bar.modified
    assert "Ctrl+Z" in window.statusBar().currentMessage()
    undo(qtbot, window)
    assert bar.current_name == first and bar.modified
    assert window.sound_panel.gain_spin.value() == -7.5
    assert window.pad.point == pytest.approx(edited_point)


def test_saving_under_a_factory_name_makes_a_user_copy(window, library, monkeypatch):
    bar = window.preset_bar
    factory = bar.current_name
    original = library.find(factory).path.read_bytes()
    window.sound_panel.gain_spin.setValue(-9.0)
    monkeypatch.setattr(bar, "_ask_name", lambda title, suggestion: factory)  # the player types the factory name
    bar.save()
    copy = library.find(f"{factory} (mine)")
    assert copy is not None and copy.is_user and copy.preset.timbre.gain_db == -9.0
    still = library.find(factory)
    assert still is not None and not still.is_user and still.path.read_bytes() == original
    assert bar.current_name == f"{factory} (mine)" and not bar.modified
    assert "factory" in window.statusBar().currentMessage()


def test_a_user_file_named_like_a_factory_preset_hides_nothing(tmp_path, user_config):
    from synth.presets import FACTORY_DIR, write_preset

    user_dir = tmp_path / "user"
    library = PresetLibrary(user_dir=user_dir, factory_dir=FACTORY_DIR)
    name = factory_names(library)[0]
    write_preset(Preset(name, Timbre(0.0, 0.0, gain_db=-20.0)), user_dir / "old.json")
    library.reload()
    assert not library.find(name).is_user
    assert library.find(f"{name} (mine)").is_user and library.find(f"{name} (mine)").preset.timbre.gain_db == -20.0


def test_revert_brings_back_the_stored_preset(window, library):
    bar = window.preset_bar
    name = bar.current_name
    placed = window._place_on_map(library.find(name))
    assert not bar.buttons["revert"].isEnabled()
    window.sound_panel.attack_spin.setValue(999.0)
    window.pad.set_point(*inside(window.pad, 0.9, 0.9))
    assert bar.buttons["revert"].isEnabled()
    bar.buttons["revert"].click()
    now, stored = window.timbre(), placed.timbre
    assert (now.gain_db, now.attack_ms, now.release_ms) == (stored.gain_db, stored.attack_ms, stored.release_ms)
    xmin, xmax, ymin, ymax = window.pad.extent
    assert window.pad.point == pytest.approx((min(max(stored.x, xmin), xmax), min(max(stored.y, ymin), ymax)))
    assert not bar.modified


def test_undo_and_redo_of_pad_drags_and_edits(window, adapter, qtbot):
    pad = window.pad
    start = pad.point
    end = inside(pad, 0.8, 0.2)
    qtbot.mousePress(pad.viewport(), Qt.LeftButton, pos=pixel_of(pad, *inside(pad, 0.5, 0.5)))
    qtbot.mouseMove(pad.viewport(), pixel_of(pad, *inside(pad, 0.6, 0.4)))
    qtbot.mouseRelease(pad.viewport(), Qt.LeftButton, pos=pixel_of(pad, *end))
    dragged = pad.point
    assert dragged != start
    window.sound_panel.release_spin.setValue(1234.0)
    undo(qtbot, window)
    assert window.sound_panel.release_spin.value() != 1234.0
    assert pad.point == dragged
    undo(qtbot, window)  # the whole drag is one step
    assert pad.point == pytest.approx(start)
    qtbot.waitUntil(lambda: adapter.engine.point == pytest.approx(start), timeout=1000)
    redo(qtbot, window)
    assert pad.point == pytest.approx(dragged)
    redo(qtbot, window)
    assert window.sound_panel.release_spin.value() == 1234.0
    qtbot.waitUntil(lambda: adapter.engine.point == pytest.approx(dragged), timeout=1000)


def test_arrow_nudges_undo_as_one_step(window, qtbot):
    pad = window.pad
    start = pad.point
    for _ in range(5):
        qtbot.keyClick(pad, Qt.Key_Right)
    assert pad.point != start
    undo(qtbot, window)
    assert pad.point == pytest.approx(start)


def test_deleting_a_user_preset_can_be_undone(window, library, monkeypatch, qtbot):
    bar = window.preset_bar
    library.save(Preset("Keep Me", Timbre(0.1, 0.1, gain_db=-4.0)))
    bar.refresh()
    bar.load("Keep Me")
    monkeypatch.setattr(bar, "_confirm", lambda question: True)
    bar.delete()
    assert library.find("Keep Me") is None
    undo(qtbot, window)
    assert library.find("Keep Me") is not None and library.find("Keep Me").preset.timbre.gain_db == -4.0
    assert bar.combo.findData("Keep Me") >= 0


def test_a_b_compare(window, adapter, qtbot):
    bar = window.preset_bar
    assert bar.ab_buttons["A"].isChecked()
    a_state = (window.timbre(), bar.current_name)
    bar.ab_buttons["B"].click()  # B starts as a copy of A
    assert (window.timbre(), bar.current_name) == a_state
    other = next(name for name in factory_names(bar.library) if name != a_state[1])
    bar.load(other)
    window.sound_panel.gain_spin.setValue(-21.0)
    b_state = (window.timbre(), bar.current_name)
    assert b_state != a_state
    bar.ab_buttons["A"].click()
    assert (window.timbre(), bar.current_name) == a_state
    qtbot.waitUntil(lambda: adapter.engine.point == pytest.approx(a_state[0].point), timeout=1000)
    assert adapter.sound()[0] == a_state[0].gain_db
    bar.ab_buttons["B"].click()
    assert (window.timbre(), bar.current_name) == b_state
    undo(qtbot, window)  # each side keeps its own history: this undoes B's last edit, not A's
    assert window.sound_panel.gain_spin.value() != -21.0 and bar.current_name == other
    bar.copy_button.click()  # B -> A
    bar.ab_buttons["A"].click()
    assert bar.current_name == other


def test_every_skipped_preset_file_is_named(qtbot, adapter, tmp_path, user_config):
    user_dir = tmp_path / "user_presets"
    user_dir.mkdir()
    (user_dir / "broken.json").write_text("{ this is not json")
    (user_dir / "foreign.json").write_text(json.dumps({"some": "other app"}))
    (user_dir / "third.json").write_text("[]")
    window = MainWindow(adapter, PresetLibrary(user_dir=user_dir))
    qtbot.addWidget(window)
    window.show()
    message = window.statusBar().currentMessage()
    assert "3 preset files skipped" in message
    for name in ("broken.json", "foreign.json", "third.json"):
        assert name in message
