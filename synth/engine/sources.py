"""Note sources: whatever turns (timbre point, pitches, velocity) into audio for the engine.

The engine depends only on the ``NoteSource`` protocol, so the real model (``synth.engine.synthesizer.Synthesizer``
behind ``Engine.from_bundle``) and the deterministic ``SineNoteSource`` are interchangeable. ``SineNoteSource`` is a
real (if simple) instrument, not a mock: decaying harmonic tones at exactly the requested pitch, NSynth-shaped (held
for 3 s, then a 1 s release), whose timbre moves smoothly with the point. The tests and benchmarks play it through
the real audio/MIDI bus, and the engine falls back to it as a demo sound when no model bundle is installed.
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class NoteSource(Protocol):
    """What the engine needs from a generator.

    Required: ``sample_rate`` (Hz), ``pitch_range`` ((low, high) MIDI pitches, inclusive) and
    ``generate(xy, pitches, velocity) -> float32[n, samples]``.
    Optional (read with getattr): ``hash`` (str, identifies the model for cache keys; default: the class name),
    ``map_bounds`` (((x0, x1), (y0, y1)), the region of the timbre map the on-disk grid covers; default (-1, 1)^2),
    ``held_seconds`` (how long notes are held before their release; default 3.0),
    ``velocity_layers`` (the velocities the model generates a distinct timbre for, e.g. (40, 70, 100, 127); asked
    for another velocity it plays the nearest layer, ties to the lower one; default ``(100,)``: the model ignores
    velocity and the voices' velocity curve is the only loudness cue; read it with ``velocity_layers_of``),
    ``preview(xy, pitches, velocity) -> float32[n, samples]`` (a fast approximation of ``generate``, tens of ms for a
    few notes: what held notes play while the pad is dragged, until the exact notes for the resting point follow),
    ``refine_preview(xy, pitches, velocity, tag, fresh) -> (tag, finished) | None`` (one piece of a better preview
    that later previews start from: ``synth.engine.model_source.ModelNoteSource.refine_preview``).
    """

    sample_rate: int
    pitch_range: tuple[int, int]

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray: ...


def source_hash(source: object) -> str:
    return str(getattr(source, "hash", None) or type(source).__name__)


def velocity_layers_of(source: object) -> tuple[int, ...]:
    """The source's velocity layers, sorted (``(100,)`` for sources whose notes do not depend on velocity)."""
    from synth.engine.velocity import normalize_layers

    return normalize_layers(getattr(source, "velocity_layers", None))


def source_bounds(source: object) -> tuple[tuple[float, float], tuple[float, float]]:
    bounds = getattr(source, "map_bounds", None)
    if bounds is None:
        return ((-1.0, 1.0), (-1.0, 1.0))
    (x0, x1), (y0, y1) = bounds
    return ((float(x0), float(x1)), (float(y0), float(y1)))


class SineNoteSource:
    """Deterministic harmonic tones whose timbre depends on the point (see module docstring).

    x sets the spectral tilt (left: nearly pure fundamental, right: bright, many harmonics), y the balance of odd and
    even harmonics (top: hollow, clarinet-like, bottom: full) and the decay rate. The fundamental is always the
    strongest partial, so pitch trackers and FFT peaks find the played pitch. ``delay_per_note`` simulates the cost of
    a real model (seconds of sleep per generated note) for benchmarks of the worker.

    ``velocity_layers`` (more than one) makes it velocity-conditioned like the retrained model: each layer has its
    own timbre, brighter the harder the layer (the tilt drops by 2 at full velocity relative to 100), and its own
    level (``layer / 127`` of the amplitude), and any other velocity plays the nearest layer. Without it (or with
    one layer) the timbre ignores velocity and the level follows ``min(1, velocity / 100)``, as always.
    """

    map_bounds = ((-1.0, 1.0), (-1.0, 1.0))
    held_seconds = 3.0

    def __init__(self, sample_rate: int = 24000, pitch_range: tuple[int, int] = (21, 108), duration: float = 4.0,
                 delay_per_note: float = 0.0, amplitude: float = 0.5,
                 velocity_layers: Sequence[int] | None = None) -> None:
        from synth.engine.velocity import normalize_layers

        self.sample_rate = int(sample_rate)
        self.pitch_range = (int(pitch_range[0]), int(pitch_range[1]))
        self.duration = float(duration)
        self.delay_per_note = float(delay_per_note)
        self.amplitude = float(amplitude)
        self.velocity_layers = normalize_layers(velocity_layers)
        self.layered = len(self.velocity_layers) > 1
        name = f"sine:{sample_rate}:{pitch_range}:{duration}" + (f":{self.velocity_layers}" if self.layered else "")
        self.hash = hashlib.sha256(name.encode()).hexdigest()[:12]
        self.calls = 0

    def partials(self, xy: Sequence[float], pitch: int, layer: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(frequencies, amplitudes) of the partials of one note; amplitudes relative to the fundamental.
        ``layer``: the velocity layer of a layered source (None: the timbre does not depend on velocity)."""
        x, y = (float(np.clip(v, -1.5, 1.5)) for v in xy[:2])
        f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
        n = np.arange(1, 17)
        freqs = f0 * n
        tilt = 1.0 + 1.5 * (1.0 - (x + 1.5) / 3.0) * 2.0  # 1 (bright) .. 4 (dark)
        if layer is not None:  # harder layers are brighter: 40 -> +1.4 (darker), 127 -> -0.6
            tilt = max(0.5, tilt - 2.0 * (layer - 100) / 87.0)
        amps = 1.0 / n.astype(np.float64) ** tilt
        amps[1::2] *= 0.5 + 0.5 * (1.0 - (y + 1.5) / 3.0)  # even harmonics weaker toward the top
        amps[0] = 1.0
        amps[1:] = np.minimum(amps[1:], 0.7)
        keep = freqs < 0.45 * self.sample_rate
        return freqs[keep], amps[keep]

    def preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        """The live-morph preview (see ``NoteSource``): the exact notes without the simulated model cost."""
        return self._tones(xy, [int(p) for p in pitches], velocity)

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        pitches = [int(p) for p in pitches]
        self.calls += 1
        if self.delay_per_note > 0:
            time.sleep(self.delay_per_note * len(pitches))
        return self._tones(xy, pitches, velocity)

    def _tones(self, xy: Sequence[float], pitches: list[int], velocity: int) -> np.ndarray:
        sr = self.sample_rate
        samples = int(round(self.duration * sr))
        t = np.arange(samples, dtype=np.float64) / sr
        held = min(self.held_seconds, self.duration)
        y = float(np.clip(xy[1], -1.5, 1.5))
        decay = 0.15 + 0.25 * (y + 1.5) / 3.0  # slow amplitude decay while held (per second, in nepers)
        env = np.minimum(t / 0.01, 1.0) * np.exp(-decay * t)
        rel = t >= held
        env[rel] *= np.exp(-(t[rel] - held) / 0.15)
        out = np.zeros((len(pitches), samples), dtype=np.float32)
        layer = None
        level = min(1.0, max(velocity, 1) / 100.0)
        if self.layered:
            from synth.engine.velocity import nearest_layer

            layer = nearest_layer(velocity, self.velocity_layers)
            level = layer / 127.0
        for row, pitch in enumerate(pitches):
            freqs, amps = self.partials(xy, pitch, layer)
            wave = np.zeros(samples)
            for f, a in zip(freqs, amps):
                wave += a * np.sin(2 * np.pi * f * t)
            wave *= env * (self.amplitude * level / max(1.0, float(np.sum(amps))) * 1.6)
            out[row] = wave.astype(np.float32)
        return out
