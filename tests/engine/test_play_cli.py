"""``python -m synth play`` runs headless on the JACK bus, plays from its MIDI port and exits cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import unique_name

pytestmark = pytest.mark.jack


def test_play_runs_headless_and_reports(jack_server, tmp_path, keyboard):
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    client = unique_name("pgesamplay")
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--bundle", str(tmp_path / "none"),
                             "--blocksize", "1024", "--duration", "2.5", "--midi-port", unique_name("absent"),
                             "--midi-client", client],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        keyboard.connect(f"{client}:midi_in", timeout=20)  # the engine's virtual port appears once it runs
        time.sleep(0.3)
        keyboard.note_on(60)
        time.sleep(0.3)
        keyboard.note_off(60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "playing the built-in demo tones" in err and "not there yet" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["bad_blocks"] == 0 and summary["latency_ms"] > 0
