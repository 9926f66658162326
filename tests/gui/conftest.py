"""GUI fixtures: the real Engine (tiny bundle when the model code provides one, else the demo source), without
audio or MIDI ports, and a preset library whose user folder is a temp dir. Qt runs offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from synth.gui.engine_adapter import EngineAdapter, OpenOptions, open_engine
from synth.presets import FACTORY_DIR, PresetLibrary


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny random-weight bundle from synth.model.bundle.build_tiny_bundle, or None while it does not exist."""
    try:
        from synth.model.bundle import build_tiny_bundle
    except ImportError:
        return None
    folder = tmp_path_factory.mktemp("tiny_bundle")
    result = build_tiny_bundle(folder)
    return result if isinstance(result, (str, os.PathLike)) else folder


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    """Keep the app away from the real user config folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture
def adapter(tiny_bundle, tmp_path) -> EngineAdapter:
    bundle = tiny_bundle if tiny_bundle is not None else tmp_path / "no-model-here"
    adapter = open_engine(OpenOptions(bundle=bundle, audio=False, use_grid=False))
    yield adapter
    adapter.close()


@pytest.fixture
def library(tmp_path, user_config) -> PresetLibrary:
    return PresetLibrary(user_dir=tmp_path / "user_presets", factory_dir=FACTORY_DIR)


@pytest.fixture
def window(qtbot, adapter, library):
    from synth.gui.main_window import MainWindow

    window = MainWindow(adapter, library)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.pad.setFocus()
    return window
