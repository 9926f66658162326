"""MIDI control on the real JACK bus: a learned CC stream moves the pad point and the engine's (the sound's) point,
and a program change loads the n-th preset."""

from __future__ import annotations

import pytest

from tests.gui.test_window_on_jack import live  # noqa: F401  (the window + engine + recorder fixture)
from tests.jackbus import jack_output_device

pytestmark = pytest.mark.jack


def test_a_learned_cc_stream_moves_the_pad_and_the_sound(live, qtbot, keyboard):  # noqa: F811
    window, adapter, rec = live
    keyboard.connect(adapter.virtual_port_name())
    qtbot.wait(300)
    x0, x1, y0, y1 = window.pad.extent
    window.midi_control.learn("x")
    keyboard.send(0xB0, 74, 0)  # the knob that is moved binds
    qtbot.waitUntil(lambda: window.midi_control.cc.bindings["x"] == 74, timeout=3000)
    window.midi_control.learn("y")
    keyboard.send(0xB0, 1, 0)  # the mod wheel, 14-bit: MSB then its LSB partner CC33
    keyboard.send(0xB0, 33, 0)
    qtbot.waitUntil(lambda: window.midi_control.cc.bindings["y"] == 1, timeout=3000)
    for step in range(0, 128, 8):  # a knob turned up while the wheel goes to about three quarters
        keyboard.send(0xB0, 74, step)
        keyboard.send(0xB0, 1, step * 3 // 4)
        keyboard.send(0xB0, 33, 0)
        qtbot.wait(10)
    keyboard.send(0xB0, 74, 127)
    wheel = (96 * 128) / 16383.0
    keyboard.send(0xB0, 1, 96)
    keyboard.send(0xB0, 33, 0)
    target = (x1, y0 + wheel * (y1 - y0))
    near = lambda p: abs(p[0] - target[0]) < 1e-3 * (x1 - x0) and abs(p[1] - target[1]) < 1e-3 * (y1 - y0)
    qtbot.waitUntil(lambda: near(window.pad.point), timeout=3000)
    qtbot.waitUntil(lambda: near(adapter.point), timeout=3000)  # the engine plays from the pad's point


def test_a_program_change_switches_presets(live, qtbot, keyboard):  # noqa: F811
    window, adapter, rec = live
    keyboard.connect(adapter.virtual_port_name())
    qtbot.wait(300)
    entries = window.preset_bar.library.entries
    assert len(entries) >= 3
    for program in (2, 1):
        keyboard.send(0xC0, program)
        qtbot.waitUntil(lambda: window.preset_bar.current_name == entries[program].name, timeout=3000)


def test_a_cc_stream_moves_the_sound_of_a_tiny_model(jack_server, qtbot, tmp_path, library, keyboard):
    """With a (tiny) model the notes are generated again at the point the CC moved to."""
    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow
    from synth.model.bundle import build_tiny_bundle
    from tests.conftest import unique_name

    bundle = build_tiny_bundle(tmp_path / "tiny", seed=0)
    adapter = open_engine(OpenOptions(bundle=bundle, device=jack_output_device(), use_grid=False,
                                      midi_client=unique_name("pgesamcc")))
    assert adapter.fallback_reason is None, adapter.fallback_reason
    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    try:
        adapter.start()
        keyboard.connect(adapter.virtual_port_name())
        slot = adapter.engine.slots[60]
        qtbot.waitUntil(lambda: slot.buffer is not None, timeout=30000)
        before = slot.buffer
        window.midi_control.cc.bind("x", 20)
        x0, x1, _, _ = window.pad.extent
        for value in (40, 80, 127):
            keyboard.send(0xB0, 20, value)
            qtbot.wait(30)
        qtbot.waitUntil(lambda: abs(adapter.point[0] - x1) < 1e-3 * (x1 - x0), timeout=5000)
        worker = adapter.engine.worker
        qtbot.waitUntil(lambda: slot.buffer is not before and slot.tag[:2] == (worker.serial, "exact"),
                        timeout=30000)
    finally:
        window.close()
        adapter.close()
