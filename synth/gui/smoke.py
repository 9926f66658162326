"""``run_synth.py --smoke-test``: the window is open; play one note through the engine and check it is not silent.

With a JACK server running the note goes out through the real audio stream (a tap on the engine's block function
measures what the callback hands to PortAudio; with the audio host, the host's callback measures it); without one,
blocks are pulled from the engine directly (a null output). Either way the sound comes from the same engine path a
player hears.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

SILENCE_DB = -60.0
TIMEOUT_S = 90.0  # the first note of a real model on a slow CPU can take a while (it is generated, then cached)


class BlockTap:
    """Wraps ``engine.process_block`` and keeps the loudest block RMS it has seen (no allocation per block)."""

    def __init__(self, process_block) -> None:
        self._process_block = process_block
        self.blocks = 0
        self.max_rms = 0.0

    def __call__(self, out: np.ndarray) -> None:
        self._process_block(out)
        self.blocks += 1
        rms = math.sqrt(float(np.vdot(out, out)) / max(1, out.size))
        if rms > self.max_rms:
            self.max_rms = rms


class HostTap:
    """The same readings from the audio host (synth.engine.audio_host): its callback keeps the loudest block RMS."""

    def __init__(self, audio) -> None:
        self._audio = audio

    @property
    def blocks(self) -> int:
        return self._audio.blocks_heard

    @property
    def max_rms(self) -> float:
        return self._audio.max_rms


def rms_db(rms: float) -> float:
    return 20.0 * math.log10(rms) if rms > 1e-9 else -180.0


def run_smoke_test(app, window, adapter, through_jack: bool, timeout: float = TIMEOUT_S) -> int:
    engine = adapter.engine
    tap = BlockTap(engine.process_block)
    engine.process_block = tap  # the audio stream calls the instance attribute, so it plays through the tap
    adapter.start()
    if adapter.audio_error:
        return _fail(f"the audio output did not open: {adapter.audio_error}")
    if engine.audio_process and engine.audio is not None:  # the blocks are mixed in the audio host: ask it
        tap = HostTap(engine.audio)
    app.processEvents()
    if not window.isVisible():
        return _fail("the main window did not open")
    pitch = _test_pitch(adapter.pitch_range)
    started = time.monotonic()
    adapter.note_on(pitch, 100)
    heard = _wait_for_sound(app, engine, tap, pump=not through_jack, timeout=timeout)
    adapter.note_off(pitch)
    elapsed = time.monotonic() - started
    adapter.close()
    window.close()
    route = "the JACK audio output" if through_jack else "a null output (no JACK server running)"
    level = rms_db(tap.max_rms)
    if not heard:
        return _fail(f"note {pitch} stayed silent for {elapsed:.0f} s through {route}: loudest block "
                     f"{level:.1f} dBFS RMS after {tap.blocks} blocks (model: {adapter.model_name})")
    print(f"smoke test passed: note {pitch} played through {route}, loudest block {level:.1f} dBFS RMS, "
          f"{elapsed:.1f} s after note-on (model: {adapter.model_name}, generation on {adapter.generation_device})")
    return 0


def _wait_for_sound(app, engine, tap: BlockTap, pump: bool, timeout: float) -> bool:
    block = np.zeros((engine.block_size, engine.channels), dtype=np.float32)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pump:
            tap(block)
        app.processEvents()
        if rms_db(tap.max_rms) > SILENCE_DB:
            return True
        time.sleep(engine.block_size / engine.sample_rate / (4 if pump else 1))
    return False


def _test_pitch(pitch_range: tuple[int, int]) -> int:
    low, high = pitch_range
    return 60 if low <= 60 <= high else (low + high) // 2


def _fail(message: str) -> int:
    print(f"smoke test FAILED: {message}", file=sys.stderr)
    return 1
