"""Issue 16 items 1 and 2 for the session file: a NaN master gain is refused and reported (it used to become +6 dB),
a crafted file (deep nesting, a 5000-digit integer, a huge float) never stops the app from starting."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys

import pytest

from synth.gui import session

DEEP = "[" * 100000 + "]" * 100000


def _session(window, **changes) -> dict:
    data = session.capture(window)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**(data.get(section) or {}), field: value}
        else:
            data[section] = value
    return data


def _write(path, data: dict) -> None:
    path.write_text(json.dumps(data))  # Python writes NaN / Infinity, as this app did before it refused them


@pytest.mark.parametrize("gain", [math.nan, math.inf, -math.inf, 1000.0, 1e300])
def test_a_bad_master_gain_in_the_session_is_refused_and_reported(gain, window, adapter, tmp_path):
    path = tmp_path / "session.json"
    before = adapter.settings()["master_gain_db"]
    _write(path, _session(window, engine__master_gain_db=gain, engine__bend_range=5))
    problems = session.restore(window, session.load(path))
    assert len(problems) == 1 and "engine.master_gain_db" in problems[0]
    assert adapter.settings()["master_gain_db"] == before
    assert adapter.engine.settings.master_gain_db == pytest.approx(before)
    assert adapter.settings()["bend_range"] == 5  # the good values in the same file still apply


@pytest.mark.parametrize("field,value", [("point", [1e300, 0.0]), ("point", [math.nan, 0.0]),
                                         ("sound", {"gain_db": math.nan, "attack_ms": 5.0, "release_ms": 300.0}),
                                         ("engine", {"blocksize": 10 ** 9}), ("engine", {"samplerate": 44100.5}),
                                         ("engine", {"velocity_curve": ["soft"]})])
def test_other_bad_session_values_are_reported_not_applied(field, value, window, tmp_path):
    path = tmp_path / "session.json"
    before = window.timbre()
    _write(path, _session(window, **{field: value}))
    problems = session.restore(window, session.load(path))
    assert len(problems) == 1 and field in problems[0]
    assert window.timbre() == before


@pytest.mark.parametrize("text", [DEEP, '{"version": 1, "octave_base": ' + "9" * 5000 + "}",
                                  '{"version": 1, "engine": {"master_gain_db": 1' + "0" * 400 + ".0}}",
                                  "\xff\xfe{}", '{"version": 1, "point": [' * 40 + "]}" * 40])
def test_a_crafted_session_file_is_ignored_with_a_warning(text, window, tmp_path, caplog):
    path = tmp_path / "session.json"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with caplog.at_level(logging.WARNING):
        data = session.load(path)
    assert isinstance(data, dict)
    session.restore(window, data)  # no exception: the app starts
    if not data.get("engine"):
        assert str(path) in caplog.text


def test_the_app_starts_with_a_crafted_session_file(tmp_path):
    """The real start-up path (synth.gui.app.run_window restores the session) with a deeply nested session.json."""
    config = tmp_path / "config" / "pgesam-synth"
    config.mkdir(parents=True)
    (config / "session.json").write_text(DEEP)
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from synth.gui import session\n"
            "data = session.load()\n"
            "print('loaded', data)\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "loaded {}" in done.stdout and "session.json" in done.stderr and "Traceback" not in done.stderr


def test_a_stale_temp_file_of_a_killed_save_is_removed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = tmp_path / f".session.json.{child.pid}-abcd.tmp"
    stale.write_text("{")
    assert session.load(tmp_path / "session.json") == {}
    assert not stale.exists()
