"""Issue 17: the persistent status strip (audio device, end-to-end latency, level, xruns, generation) and the banner
that says what to do when there is no audio output."""

from __future__ import annotations

import html

import pytest

from tests.conftest import unique_name


def test_strip_shows_latency_xruns_level_and_generation(window, adapter, monkeypatch, qtbot):
    strip = window.status_strip
    meters = {"peak": 0.5, "xruns": 3, "latency_ms": 1000 * 1024 / 48000, "worker_errors": [], "worker_error_count": 0}
    monkeypatch.setattr(adapter.engine, "meters", lambda: dict(meters))
    monkeypatch.setattr(adapter.engine, "block_size", 1024)
    monkeypatch.setattr(adapter.engine, "sample_rate", 48000)
    window.poll_engine()
    assert strip.latency_label.text() == "Latency 42.7 ms"  # output 21.3 ms + one 1024-frame block at 48 kHz (21.3 ms)
    assert strip.xrun_label.text() == "Xruns 3"
    assert strip.level_meter.value() == pytest.approx(-6.0, abs=0.2)
    assert adapter.generation_device.split()[0] in strip.generation_label.text()
    assert strip.cache_bar.maximum() == adapter.cache_progress()[1]
    assert strip.isVisible() and not strip.banner.isVisible()
    meters["xruns"] = 5
    window.poll_engine()
    assert strip.xrun_label.text() == "Xruns 5"


def test_no_audio_device_shows_a_banner_with_the_fix(qtbot, tmp_path, library):
    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow

    adapter = open_engine(OpenOptions(bundle=tmp_path / "none", device="no-such-device", midi=False, use_grid=False))
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    window.show()
    try:
        adapter.start()
        qtbot.waitUntil(lambda: window.status_strip.banner.isVisible(), timeout=2000)
        text = window.status_strip.banner_label.text()
        assert "No audio output" in text and "Settings" in text  # what is wrong (the engine's words) and the fix
        assert html.escape(adapter.audio_error) in text
        assert window.status_strip.audio_label.text().startswith("Audio: none")
        assert window.status_strip.latency_label.text() == "Latency —"
    finally:
        adapter.close()


@pytest.mark.jack
def test_strip_on_the_jack_bus(jack_server, qtbot, tmp_path, library):
    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow
    from tests.jackbus import jack_output_device

    adapter = open_engine(OpenOptions(bundle=tmp_path / "none", device=jack_output_device(), use_grid=False,
                                      midi_client=unique_name("pgesamstrip")))
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    window.show()
    try:
        adapter.start()
        assert adapter.audio_error is None, adapter.audio_error
        strip = window.status_strip
        qtbot.waitUntil(lambda: strip.latency_label.text() != "Latency —", timeout=3000)
        engine = adapter.engine
        expected = 1000.0 * (engine.latency + engine.block_size / engine.sample_rate)
        assert strip.latency_label.text() == f"Latency {expected:.1f} ms"
        assert "JACK" in strip.audio_label.text()
        assert strip.xrun_label.text() == f"Xruns {adapter.xruns()}"
        assert not strip.banner.isVisible()
        window.play_note(69, 110)
        qtbot.waitUntil(lambda: strip.level_meter.value() > -60, timeout=20000)
        window.stop_note(69)
    finally:
        window.close()
        adapter.close()
