"""The settings dialog: values round-trip to the engine, latency is shown, and on a JACK bus it lists the JACK
audio device and MIDI ports."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from synth.gui.settings import SettingsDialog
from synth.engine.engine import PANIC


def test_settings_apply_to_the_engine(window, adapter, qtbot):
    dialog = window.open_settings()  # deletes itself on close
    assert "ms per block" in dialog.latency_label.text()
    dialog.bend_spin.setValue(12)
    dialog.curve_combo.setCurrentText("soft")
    dialog.gain_value.setValue(-20.0)
    assert adapter.engine.settings.master_gain_db == pytest.approx(-20.0), "master gain follows the slider live"
    assert dialog.apply()
    assert adapter.engine.settings.bend_range == 12
    assert adapter.engine.settings.velocity_curve == "soft"
    adapter.meters = {"peak": 0.5, "xruns": 3}
    dialog.update_meters()
    assert dialog.xrun_label.text() == "3"
    assert "-6.0 dBFS" in dialog.peak_meter.format()
    qtbot.keyClick(dialog, Qt.Key_Escape)
    assert dialog.isVisible(), "Esc is panic in the settings dialog, not close"
    assert any(event[0] == PANIC for event in adapter.engine.pending_events())
    dialog.close()


def test_block_size_change_rebuilds_the_engine_keeping_the_point(window, adapter, qtbot):
    adapter.set_point(0.25, -0.5)
    old = adapter.engine
    dialog = SettingsDialog(adapter, window)
    qtbot.addWidget(dialog)
    dialog.block_size_combo.setCurrentIndex(dialog.block_size_combo.findData(512))
    assert "10.7 ms" in dialog.latency_label.text()
    assert dialog.apply()
    assert adapter.engine is not old and adapter.engine.block_size == 512
    assert adapter.engine.point == (0.25, -0.5)


@pytest.mark.jack
def test_settings_dialog_lists_jack_devices_and_midi_ports(jack_server, window, adapter, qtbot):
    import rtmidi

    from tests.conftest import unique_name

    name = unique_name("testkbd")
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    keyboard.open_virtual_port("out")
    try:
        dialog = SettingsDialog(adapter, window)
        qtbot.addWidget(dialog)
        devices = [dialog.device_combo.itemText(i) for i in range(dialog.device_combo.count())]
        assert any("JACK" in text for text in devices), devices
        dialog._fill_midi_ports()
        ports = [dialog.midi_combo.itemText(i) for i in range(dialog.midi_combo.count())]
        assert any(name in text for text in ports), ports
        assert any(text.startswith("Virtual port") for text in ports)
    finally:
        keyboard.close_port()
        del keyboard
