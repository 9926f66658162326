"""The window opens on the engine, shows the map, model and generation device, and Esc is panic."""

from __future__ import annotations

from PySide6.QtCore import Qt

from synth.engine.engine import PANIC


def test_window_opens_on_the_engine(window, adapter, tiny_bundle):
    assert window.isVisible()
    assert adapter.model_name in window.windowTitle()
    assert "Generation:" in window.device_label.text()
    assert window.cache_bar.maximum() >= 1
    if tiny_bundle is not None:
        assert adapter.fallback_reason is None, adapter.fallback_reason
        assert window.pad.points, "the bundle's instruments are drawn on the pad"
    else:
        assert adapter.fallback_reason and "demo" in adapter.fallback_reason
        assert window.fallback_label.text(), "the status bar says the app runs on the fallback source"


def test_status_bar_follows_cache_progress(window, adapter, qtbot):
    adapter.engine.worker.start()
    adapter.set_point(0.1, 0.2)
    qtbot.waitUntil(lambda: window.cache_bar.value() >= 1, timeout=15000)
    assert window.cache_bar.maximum() == adapter.cache_progress()[1]


def test_escape_is_panic(window, adapter, qtbot):
    qtbot.keyPress(window.pad, Qt.Key_A)
    assert 48 in adapter.held_notes()
    qtbot.keyClick(window.pad, Qt.Key_Escape)
    assert adapter.held_notes() == set()
    assert any(event[0] == PANIC for event in adapter.engine.pending_events())
    assert window.keys.held == {}


def test_tools_menu_holds_only_working_entries(window):
    tools = [action.text() for action in window.tools_menu.actions()]
    assert tools and not any("rerender" in t for t in tools)  # issue 19: nothing needs prerendering
    assert all(action.isEnabled() for action in window.tools_menu.actions())
    window.add_tool("Something else…", lambda: None)
    assert window.tools_menu.actions()[-1].text() == "Something else…"


def test_an_invalid_bundle_falls_back_to_demo_tones_and_says_why(tmp_path):
    from synth.gui.engine_adapter import OpenOptions, open_engine

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{ not json")
    adapter = open_engine(OpenOptions(bundle=broken, audio=False, use_grid=False))
    try:
        assert adapter.fallback_reason and str(broken) in adapter.fallback_reason
        assert "demo tones" in adapter.model_name
    finally:
        adapter.close()


def test_an_audio_device_that_does_not_open_is_reported_and_the_app_goes_on(qtbot, tmp_path, library):
    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow

    adapter = open_engine(OpenOptions(bundle=tmp_path / "none", device="no-such-device", midi=False, use_grid=False))
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    try:
        adapter.start()
        assert adapter.audio_error and "No audio output" in adapter.audio_error
        qtbot.waitUntil(lambda: "No audio output" in window.statusBar().currentMessage(), timeout=2000)
        qtbot.keyPress(window.pad, Qt.Key_A)
        assert 48 in adapter.held_notes()
    finally:
        adapter.close()
