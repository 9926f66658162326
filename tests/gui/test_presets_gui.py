"""Presets in the window: save as / load round-trips the sound; bad files and failed saves are shown, never fatal."""

from __future__ import annotations

import errno
import json
import os

import pytest
from PySide6.QtCore import Qt

from synth.gui.main_window import MainWindow
from synth import presets as presets_module
from synth.presets import Preset, PresetLibrary
from synth.timbre import Timbre


def test_save_as_and_load_round_trip(window, adapter, library, qtbot, monkeypatch):
    bar = window.preset_bar
    xmin, xmax, ymin, ymax = window.pad.extent
    saved_point = (xmin + 0.3 * (xmax - xmin), ymin + 0.6 * (ymax - ymin))
    window.pad.set_point(*saved_point)
    window.sound_panel.gain_spin.setValue(-4.5)
    window.sound_panel.attack_spin.setValue(25.0)
    window.sound_panel.release_spin.setValue(900.0)
    monkeypatch.setattr(bar, "_ask_name", lambda title, suggestion: "My Test Sound")
    qtbot.mouseClick(bar.buttons["save_as"], Qt.LeftButton)
    entry = library.find("My Test Sound")
    assert entry is not None and entry.is_user and entry.path.parent == library.user_dir
    assert bar.combo.currentData() == "My Test Sound"
    assert bar.buttons["delete"].isEnabled()

    window.pad.set_point(xmin, ymin)
    window.sound_panel.gain_spin.setValue(0.0)
    bar.step(1)  # away and back: previous/next walk the list
    bar.step(-1)
    assert bar.current_name == "My Test Sound"
    assert window.pad.point == pytest.approx(saved_point, abs=1e-3)
    qtbot.waitUntil(lambda: adapter.engine.point == pytest.approx(saved_point, abs=1e-3), timeout=1000)
    assert window.sound_panel.gain_spin.value() == -4.5
    assert adapter.engine.settings.attack == pytest.approx(0.025)
    assert adapter.engine.settings.release == pytest.approx(0.9)
    assert adapter.engine.settings.master_gain_db == pytest.approx(adapter.master_gain_db - 4.5)


def test_rename_and_delete_user_preset(window, library, monkeypatch):
    bar = window.preset_bar
    library.save(Preset("Old Name", Timbre(0.0, 0.0)))
    bar.refresh()
    bar.load("Old Name")
    monkeypatch.setattr(bar, "_ask_name", lambda title, suggestion: "New Name")
    bar.rename()
    assert "New Name" in library.names() and "Old Name" not in library.names()
    monkeypatch.setattr(bar, "_confirm", lambda question: True)
    bar.delete()
    assert "New Name" not in library.names()
    assert bar.combo.findData("New Name") == -1


def test_factory_presets_are_listed_after_user_ones(window, library):
    library.save(Preset("Zzz Mine", Timbre(0.0, 0.0)))
    window.preset_bar.refresh()
    combo = window.preset_bar.combo
    assert combo.itemData(0) == "Zzz Mine" and combo.itemText(0).startswith("★")
    assert combo.count() == len(library.entries) >= 9


def test_corrupt_preset_file_is_reported_and_the_app_goes_on(qtbot, adapter, tmp_path, user_config):
    user_dir = tmp_path / "user_presets"
    user_dir.mkdir()
    (user_dir / "broken.json").write_text("{ this is not json")
    (user_dir / "foreign.json").write_text(json.dumps({"some": "other app"}))
    library = PresetLibrary(user_dir=user_dir)
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    window.show()
    assert "2 preset files skipped" in window.statusBar().currentMessage()
    assert window.preset_bar.combo.count() == len(library.entries) > 0
    window.preset_bar.step(1)  # presets still load, notes still play
    qtbot.keyPress(window.pad, Qt.Key_A)
    assert 48 in adapter.held_notes()


def test_failed_save_shows_an_error_and_keeps_the_old_file(window, library, monkeypatch):
    bar = window.preset_bar
    library.save(Preset("Keep Me", Timbre(0.1, 0.1)))
    bar.refresh()
    bar.load("Keep Me")
    path = library.find("Keep Me").path
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(presets_module.os, "fsync", disk_full)
    window.pad.set_point(0.5, 0.5)
    bar.save()
    assert "No space left" in bar.last_error
    assert bar.error_box is not None and bar.error_box.isVisible(), "the error is shown without blocking"
    assert path.read_bytes() == before
    bar.error_box.close()


def test_factory_preset_from_another_map_lands_on_its_family_centroid(window, adapter, library):
    from synth.presets import family_centroids

    centroids = family_centroids(adapter.instruments)
    factory = [e for e in library.entries if not e.is_user and e.preset.family in centroids]
    if not factory:
        pytest.skip("this map has none of the factory presets' families")
    entry = factory[0]
    window.preset_bar.load(entry.name)
    cx, cy = centroids[entry.preset.family]
    xmin, xmax, ymin, ymax = window.pad.extent
    assert window.pad.point == pytest.approx((min(max(cx, xmin), xmax), min(max(cy, ymin), ymax)), abs=1e-3)
    saved = window.current_preset("copy")
    assert saved.map_hash == adapter.map_hash
