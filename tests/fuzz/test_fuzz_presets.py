"""Property-based fuzzing of preset and session JSON (issue 16): any file content gives a valid, in-range preset
or one ``PresetError`` naming the file; any session file loads to a dict without raising, and restoring it leaves
every value the app uses finite and in range.

Example counts are bounded (``EXAMPLES``) and derandomized so CI runs the same cases in a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.presets import (ATTACK_MS_RANGE, CHARACTER_RANGE, GAIN_DB_RANGE, MAP_COORD_RANGE, PRESET_KIND,
                           RELEASE_MS_RANGE, Preset, PresetError, read_preset, write_preset)
from synth.timbre import Timbre

EXAMPLES = {"json": 200, "shaped": 200, "text": 150, "round_trip": 100, "session_load": 150, "session_restore": 30}
FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_folder = Path(tempfile.mkdtemp(prefix="fuzz-presets-"))
_counter = iter(range(10 ** 9))

_number = st.one_of(st.integers(), st.integers(-10 ** 40, 10 ** 40), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([1e300, -1e300, 5e-324, 0.0, -0.0]))
_scalar = st.one_of(st.none(), st.booleans(), _number, st.text(max_size=20))
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=12)


def _file(text: str | bytes, suffix: str = ".json") -> Path:
    path = _folder / f"f{next(_counter)}{suffix}"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return path


def _check(path: Path) -> None:
    """read_preset's contract: a preset whose every number is finite and in range, or PresetError naming the file."""
    try:
        preset = read_preset(path)
    except PresetError as exc:
        assert str(exc).startswith(str(path)) and "Traceback" not in str(exc)
        return
    timbre = preset.timbre
    for value, (lo, hi) in ((timbre.x, MAP_COORD_RANGE), (timbre.y, MAP_COORD_RANGE), (timbre.gain_db, GAIN_DB_RANGE),
                            (timbre.attack_ms, ATTACK_MS_RANGE), (timbre.release_ms, RELEASE_MS_RANGE)):
        assert math.isfinite(value) and lo <= value <= hi
    assert timbre.character is None or CHARACTER_RANGE[0] <= timbre.character <= CHARACTER_RANGE[1]
    write_preset(preset, path)  # what loads must also save (no value the writer refuses)


@settings(max_examples=EXAMPLES["json"], **FUZZ)
@given(_json)
def test_any_json_value(value):
    _check(_file(json.dumps(value)))


_preset_dict = st.fixed_dictionaries(
    {"kind": st.just(PRESET_KIND), "name": st.one_of(st.text(max_size=90), _scalar), "x": _scalar, "y": _scalar},
    optional={"gain_db": _scalar, "attack_ms": _scalar, "release_ms": _scalar, "tags": _json, "notes": _scalar,
              "version": _scalar, "map_hash": _scalar, "character": _scalar})


@settings(max_examples=EXAMPLES["shaped"], **FUZZ)
@given(_preset_dict)
def test_preset_shaped_json_with_hostile_values(value):
    _check(_file(json.dumps(value)))


@settings(max_examples=EXAMPLES["text"], **FUZZ)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.builds(lambda n, body: "[" * n + body + "]" * n, st.integers(0, 5000), st.text(max_size=10)),
                 st.builds(lambda d: '{"kind": "%s", "name": "n", "x": %s, "y": 0}' % (PRESET_KIND, d),
                           st.from_regex(r"-?[0-9]{1,6000}(\.[0-9]{0,400})?([eE][+-]?[0-9]{1,5})?", fullmatch=True))))
def test_any_bytes_or_crafted_text(content):
    _check(_file(content))


_finite = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731


@settings(max_examples=EXAMPLES["round_trip"], **FUZZ)
@given(st.builds(Preset, name=st.text(min_size=1, max_size=80).filter(str.strip),
                 timbre=st.builds(Timbre, x=_finite(*MAP_COORD_RANGE), y=_finite(*MAP_COORD_RANGE),
                                  gain_db=_finite(*GAIN_DB_RANGE), attack_ms=_finite(*ATTACK_MS_RANGE),
                                  release_ms=_finite(*RELEASE_MS_RANGE),
                                  character=st.one_of(st.none(), _finite(*CHARACTER_RANGE))),
                 tags=st.lists(st.text(max_size=10), max_size=3).map(tuple)))
def test_valid_presets_round_trip(preset):
    path = _folder / f"r{next(_counter)}.json"
    write_preset(preset, path)
    assert read_preset(path) == preset


# ---------------------------------------------------------------- session JSON

_session = st.fixed_dictionaries(
    {"version": st.one_of(st.just(1), _scalar)},
    optional={"engine": st.one_of(_json, st.fixed_dictionaries({}, optional={
                  "samplerate": _scalar, "blocksize": _scalar, "bend_range": _scalar, "master_gain_db": _scalar,
                  "velocity_curve": st.one_of(_scalar, st.sampled_from(["linear", "soft", "hard"]))})),
              "point": st.one_of(_json, st.lists(_number, min_size=2, max_size=2)),
              "sound": st.one_of(_json, st.fixed_dictionaries({"gain_db": _scalar, "attack_ms": _scalar,
                                                              "release_ms": _scalar})),
              "preset": _scalar, "octave_base": _scalar, "device_name": _scalar, "midi_port": _scalar,
              "map_hash": st.one_of(st.just("MAP"), _scalar)})


@settings(max_examples=EXAMPLES["session_load"], **FUZZ)
@given(st.one_of(_session.map(json.dumps), _json.map(json.dumps), st.text(max_size=200),
                 st.builds(lambda n: "[" * n + "]" * n, st.integers(0, 100000))))
def test_session_files_always_load(text):
    from synth.gui import session

    assert isinstance(session.load(_file(text)), dict)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from synth.gui.engine_adapter import OpenOptions, open_engine
    from synth.gui.main_window import MainWindow
    from synth.presets import FACTORY_DIR, PresetLibrary

    folder = tmp_path_factory.mktemp("session")
    adapter = open_engine(OpenOptions(bundle=folder / "no-model", audio=False, use_grid=False))
    window = MainWindow(adapter, PresetLibrary(user_dir=folder / "user", factory_dir=FACTORY_DIR))
    yield window
    window.close()
    adapter.close()


@settings(max_examples=EXAMPLES["session_restore"], suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow],
          deadline=None, derandomize=True)
@given(_session)
def test_restoring_any_session_keeps_every_value_finite(window, data):
    from synth.gui import session

    data = {**data, "map_hash": window.adapter.map_hash} if data.get("map_hash") == "MAP" else data
    problems = session.restore(window, session.load(_file(json.dumps(data))))
    assert all(isinstance(p, str) for p in problems)
    settings_now = window.adapter.settings()
    assert -60.0 <= settings_now["master_gain_db"] <= 0.0
    assert math.isfinite(window.adapter.engine.settings.master_gain_db)
    assert all(math.isfinite(v) for v in window.pad.point)
    timbre = window.timbre()  # a Timbre is finite and in range by construction; check anyway
    assert all(math.isfinite(v) for v in (timbre.gain_db, timbre.attack_ms, timbre.release_ms))
