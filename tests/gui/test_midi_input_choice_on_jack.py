"""MIDI input choice on the real JACK bus (issue 17's bugs): "None" plays nothing, and a block-size change (which
rebuilds the engine) keeps the chosen keyboard."""

from __future__ import annotations

import pytest

from tests.conftest import unique_name
from tests.gui.test_window_on_jack import live  # noqa: F401  (the window + engine + recorder fixture)

pytestmark = pytest.mark.jack


def _choose(dialog, data) -> None:
    dialog._fill_midi_ports()
    dialog.midi_combo.setCurrentIndex(dialog.midi_combo.findData(data))
    assert dialog.apply(), dialog.error_label.text()


def _plays(qtbot, window, send, pitch) -> bool:
    """Send a note; True when the engine held it (its key lit), always released afterwards."""
    send([0x90, pitch, 100])
    try:
        for _ in range(75):  # 1.5 s: many audio blocks, so a note that plays has surely been taken
            if pitch in window.keyboard.held:
                return True
            qtbot.wait(20)
        return False
    finally:
        send([0x80, pitch, 0])


def test_midi_input_none_plays_nothing_from_the_virtual_port(live, qtbot, keyboard):  # noqa: F811
    from synth.gui.settings import SettingsDialog

    window, adapter, rec = live
    keyboard.connect(adapter.virtual_port_name())
    qtbot.wait(300)
    assert _plays(qtbot, window, keyboard.midi_out.send_message, 67)
    dialog = SettingsDialog(adapter, window)
    qtbot.addWidget(dialog)
    _choose(dialog, None)
    assert adapter.settings()["midi_port"] is None
    assert not _plays(qtbot, window, keyboard.midi_out.send_message, 69), '"None" must not play the virtual port'
    assert not adapter.held_notes()
    _choose(dialog, "virtual")
    assert _plays(qtbot, window, keyboard.midi_out.send_message, 71), "the virtual port plays again once chosen"


def test_a_block_size_change_keeps_the_chosen_midi_keyboard(live, qtbot):  # noqa: F811
    import rtmidi

    from synth.gui.settings import SettingsDialog

    window, adapter, rec = live
    name = unique_name("hwkbd")
    device = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    device.open_virtual_port("out")  # stands for a hardware keyboard's output port
    try:
        dialog = SettingsDialog(adapter, window)
        qtbot.addWidget(dialog)
        port = next(p for p in adapter.midi_ports() if name in p)
        _choose(dialog, port)
        qtbot.wait(300)
        assert _plays(qtbot, window, device.send_message, 72)
        dialog.block_size_combo.setCurrentIndex(dialog.block_size_combo.findData(512))
        assert dialog.apply(), dialog.error_label.text()
        assert adapter.engine.block_size == 512
        assert adapter.settings()["midi_port"] == port
        qtbot.wait(300)
        assert _plays(qtbot, window, device.send_message, 74), "the keyboard plays after the block-size change"
    finally:
        device.close_port()
        del device
