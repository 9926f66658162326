"""Issue 17: the "character" control (the flow sampler's classifier-free guidance) reaches the synthesizer, is saved in
presets and the session as an optional field, and is hidden when the bundle does not play the flow path."""

from __future__ import annotations

import json

import pytest

from synth.gui import session
from synth.gui.main_window import MainWindow
from synth.presets import Preset
from synth.timbre import Timbre


@pytest.fixture(scope="session")
def flow_bundle(tmp_path_factory):
    from synth.model.bundle import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny_flow"), flow=True)


@pytest.fixture
def flow_window(qtbot, flow_bundle, library):
    from synth.gui.engine_adapter import OpenOptions, open_engine

    adapter = open_engine(OpenOptions(bundle=flow_bundle, audio=False, use_grid=False))
    assert adapter.fallback_reason is None, adapter.fallback_reason
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    window.show()
    yield window
    adapter.close()


def test_character_is_hidden_when_the_bundle_does_not_play_the_flow(window):
    assert not window.sound_panel.character_spin.isVisibleTo(window)
    assert window.sound_panel.character() is None


def test_character_control_reaches_the_synthesizer(flow_window, qtbot):
    window = flow_window
    spin = window.sound_panel.character_spin
    assert spin.isVisibleTo(window)
    assert (spin.minimum(), spin.maximum()) == (0.0, 8.0)
    assert spin.value() == pytest.approx(window.adapter.character)  # the bundle's default
    engine = window.adapter.engine
    engine.worker.start()
    qtbot.waitUntil(lambda: engine.cache_progress()[0] > 0, timeout=15000)
    spin.setValue(5.5)
    assert window.adapter.character == 5.5 and window.adapter.model.character == 5.5
    assert engine.cache_progress()[0] < engine.cache_progress()[1], "notes are generated again with the new character"
    qtbot.waitUntil(lambda: engine.cache_progress()[0] > 0, timeout=15000)
    assert window.preset_bar.modified


def test_character_is_saved_in_presets_and_the_session(flow_window, library, monkeypatch, tmp_path, qtbot):
    window = flow_window
    window.sound_panel.character_spin.setValue(3.25)
    monkeypatch.setattr(window.preset_bar, "_ask_name", lambda title, suggestion: "Strong")
    window.preset_bar.save_as()
    entry = library.find("Strong")
    assert json.loads(entry.path.read_text())["character"] == 3.25
    path = tmp_path / "session.json"
    assert session.save(window, path) is None
    assert json.loads(path.read_text())["sound"]["character"] == 3.25

    window.sound_panel.character_spin.setValue(1.0)
    window.preset_bar.load("Strong")
    assert window.adapter.character == 3.25
    window.sound_panel.character_spin.setValue(1.0)
    session.restore(window, session.load(path))
    assert window.sound_panel.character() == 3.25


def test_a_preset_without_character_plays_the_bundle_default(flow_window, library):
    window = flow_window
    default = window.default_character
    library.save(Preset("Old Style", Timbre(0.0, 0.0)))
    assert "character" not in json.loads(library.find("Old Style").path.read_text())
    window.preset_bar.refresh()
    window.sound_panel.character_spin.setValue(7.0)
    window.preset_bar.load("Old Style")
    assert window.sound_panel.character() == default
    assert window.adapter.character == default
