"""The app remembers settings, point, sound and preset between runs; a stale or broken session is harmless."""

from __future__ import annotations

import json

import pytest

from synth.gui import session
from synth.gui.main_window import MainWindow
from synth.presets import Preset
from synth.timbre import Timbre


def test_session_round_trip(window, adapter, library, qtbot, tmp_path):
    library.save(Preset("Mine", Timbre(0.1, 0.2)))
    window.preset_bar.refresh()
    window.preset_bar.load("Mine")
    xmin, xmax, ymin, ymax = window.pad.extent
    point = (xmin + 0.4 * (xmax - xmin), ymin + 0.7 * (ymax - ymin))
    window.pad.set_point(*point)
    window.sound_panel.set_timbre(Timbre(0.0, 0.0, -3.0, 12.0, 640.0))  # the panel shows the sound, not the point
    adapter.apply_settings(blocksize=512, bend_range=7, velocity_curve="hard", master_gain_db=-18.0)
    window.keys.shift_octave(1)
    path = tmp_path / "session.json"
    assert session.save(window, path) is None

    from synth.gui.engine_adapter import OpenOptions, open_engine

    fresh = open_engine(OpenOptions(bundle=adapter.model.path if adapter.model else tmp_path / "none",
                                    audio=False, use_grid=False))
    again = MainWindow(fresh, library)
    qtbot.addWidget(again)
    try:
        assert session.restore(again, session.load(path)) == []
        assert again.pad.point == pytest.approx(point, abs=1e-6)
        assert fresh.engine.point == pytest.approx(point, abs=1e-6)
        restored = again.timbre()
        assert (restored.gain_db, restored.attack_ms, restored.release_ms) == (-3.0, 12.0, 640.0)
        assert again.preset_bar.current_name == "Mine"
        assert fresh.engine.block_size == 512
        assert fresh.settings()["bend_range"] == 7 and fresh.settings()["velocity_curve"] == "hard"
        assert fresh.master_gain_db == -18.0
        assert again.keys.base == 60
    finally:
        fresh.close()


def test_broken_or_foreign_session_is_ignored(window, tmp_path):
    path = tmp_path / "session.json"
    path.write_text("{ broken")
    assert session.load(path) == {}
    path.write_text(json.dumps({"version": 99, "point": [1, 2]}))
    assert session.load(path) == {}
    before = window.pad.point
    odd = {"version": 1, "engine": {"samplerate": "fast"}, "point": ["x", None], "map_hash": window.adapter.map_hash,
           "sound": {"gain_db": "loud"}, "preset": 42, "octave_base": 7}
    problems = session.restore(window, odd)
    assert len(problems) == 1 and "Could not apply" in problems[0]
    assert window.pad.point == before


def test_a_point_from_another_map_is_not_restored(window):
    before = window.pad.point
    session.restore(window, {"version": 1, "point": [0.3, 0.3], "map_hash": "some-other-model"})
    assert window.pad.point == before
