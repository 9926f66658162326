"""``python -m synth play`` runs headless on the JACK bus, plays from its MIDI port and exits cleanly."""

from __future__ import annotations

import json
import os
import threading
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import unique_name
from tests.jackbus import Recorder, cents, dominant_tone, median_f0, midi_to_hz, new_output_ports, output_ports

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


def _wait_for_line(stream, pattern: "re.Pattern", timeout: float, lines: list | None = None) -> bool:
    """Read ``stream`` line by line in a thread until a line matches ``pattern`` (True) or ``timeout`` passes;
    the thread keeps draining the pipe afterwards (into ``lines`` when given) so the process never blocks on a full
    stderr."""
    found = threading.Event()

    def pump() -> None:
        for line in stream:
            if lines is not None:
                lines.append(line)
            if pattern.search(line):
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    return found.wait(timeout)


def _sounds(rec: Recorder, since: int, window_s: float = 0.1, level: float = 0.001) -> bool:
    """Whether the recording's last ``window_s`` seconds (after frame ``since``) are above ``level`` RMS."""
    now = rec.frame_time
    audio = rec.audio(max(since, now - int(window_s * rec.samplerate)), now)
    return audio.size > 0 and float(np.sqrt(np.mean(np.square(audio)))) > level


def test_play_plays_the_bundled_model_in_tune(jack_server, keyboard):
    """The headless player on models/default (the committed model): a MIDI note is heard at its pitch."""
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    client = unique_name("pgesammodel")
    rec = Recorder(name=unique_name("playrec"))
    before = output_ports()
    # a point whose C4 is loud from its first 0.2 s on the shipped map (round 4: flow C4 at velocity 100 has RMS 0.086
    # over 0.2-0.7 s here; round 3's point 0.2, -0.3 lies off round 4's band and plays at 0.009, too quiet for -12 dB);
    # the duration only bounds a stuck player: the flow path readies its notes in ~20-40 s under CI load
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--blocksize", "1024", "--duration", "120",
                             "--point", "-0.2", "0.0", "--midi-client", client], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    err: list[str] = []
    _wait_for_line(proc.stderr, re.compile(r"(?!)"), 0, err)  # only drains play's meter lines (kept for messages)
    try:
        keyboard.connect(f"{client}:midi_in", timeout=60)
        deadline = time.monotonic() + 30
        while len(new_output_ports(before)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        rec.connect_from(*new_output_ports(before)[:2])
        rec.start()
        rate = rec.samplerate
        # C4's note must be generated before it is measured. Waiting for every note of the start point (play's meter
        # "notes N/N": 352 notes, ~20 s) is not needed: a held key is generated first (synth.engine.worker), and a
        # voice struck before its note exists starts it from the beginning when it arrives. So hold C4 until it
        # sounds (its note is ready then), release it, and strike it again: that note, played from its onset at
        # once, is the one measured. The other notes are still being generated meanwhile, as when someone plays.
        pressed = rec.frame_time
        keyboard.note_on(60, 100)
        deadline = time.monotonic() + 90
        heard = False
        while not heard and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            heard = _sounds(rec, pressed)
        keyboard.note_off(60)
        assert heard, "C4 never sounded: " + "".join(err)[-2000:]
        time.sleep(0.3)
        onset = rec.frame_time
        keyboard.note_on(60, 100)
        time.sleep(0.8)
        keyboard.note_off(60)
        time.sleep(0.3)
        held = rec.audio(onset + int(0.2 * rate), onset + int(0.7 * rate))
    finally:
        proc.kill()
        proc.wait(timeout=30)  # stderr is drained by the reader thread
        rec.close()
    tone = dominant_tone(held, rate)
    assert tone.rms > 0.003, tone  # audible (master gain -12 dB)
    # its pitch (pYIN), not its loudest partial: a real timbre's second harmonic is often the strongest peak
    f0 = median_f0(held, rate)
    assert abs(cents(f0, midi_to_hz(60))) < 30, (f0, tone)


def test_play_cc_options_move_the_timbre_point(jack_server, tmp_path, keyboard):
    from synth.engine.sources import SineNoteSource, source_bounds

    env = dict(os.environ, JACK_NO_START_SERVER="1")
    client = unique_name("pgesamplaycc")
    proc = subprocess.Popen([sys.executable, "-m", "synth", "play", "--bundle", str(tmp_path / "none"),
                             "--blocksize", "1024", "--duration", "3", "--midi-client", client,
                             "--cc-x", "74", "--cc-y", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    try:
        keyboard.connect(f"{client}:midi_in", timeout=20)
        # CCs that arrive before play's CC follower first looks are its starting state, not moves (cc_control):
        # send them once play says it plays (the follower starts right after that line), not at a fixed time
        # after the port appeared (under load 0.3 s was once not enough)
        assert _wait_for_line(proc.stderr, re.compile(r"Ctrl-C to stop"), 30, lines), "play never started"
        time.sleep(0.3)
        for value in range(0, 128, 16):  # a knob turned up; the mod wheel sent down to 0
            keyboard.send(0xB0, 74, value)
            keyboard.send(0xB0, 1, 127 - value)
            time.sleep(0.02)
        keyboard.send(0xB0, 74, 127)
        keyboard.send(0xB0, 1, 0)
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines)
    assert proc.returncode == 0, err
    (x0, x1), (y0, y1) = source_bounds(SineNoteSource())
    x, y = json.loads(out.strip().splitlines()[-1])["point"]
    assert abs(x - x1) < 1e-3 * (x1 - x0) and abs(y - y0) < 1e-3 * (y1 - y0), (x, y)
