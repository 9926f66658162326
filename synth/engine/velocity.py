"""Velocity curves: MIDI velocity (0-127) -> linear amplitude gain, as 128-entry tables; velocity layers.

A curve is ``gain = (velocity / 127) ** exponent`` (velocity 0 -> 0):

- ``linear`` (exponent 1.0): amplitude proportional to velocity; velocity 64 is about -6 dB, velocity 16 -18 dB.
- ``soft`` (exponent 0.5): for light-touch keyboards; soft playing is already fairly loud (64 -> -3 dB).
- ``hard`` (exponent 2.0): for heavy-action keyboards; it takes a hard strike to get loud (64 -> -12 dB).

Velocity layers: a velocity-conditioned model generates one note per (pitch, layer), e.g. layers (40, 70, 100, 127);
a played velocity sounds with the note of the nearest layer (ties to the lower layer, the model's own rule:
``synth.model.vae.velocity_index``). Such a note already carries its layer's level (the training notes are quieter
at low velocity), so the voice gain must not apply the level a second time: ``velocity_gain_table`` divides the
curve by the curve at the layer, and a note played at its layer's own velocity sounds at the model's level. Between
layers the curve still shapes the level. A source with a single layer (every model that ignores velocity, and the
demo source) keeps the plain curve: its one note is the velocity-100 note and the curve is the only loudness cue.

Why the nearest layer and not a crossfade of the two nearest: measured in the audio callback (32 voices, 512-frame
blocks, same run, medians; 2-core CPU under a training run) the nearest layer costs what one layer cost before
(before: 86 us per block at the generated pitch, 385 us re-pitched; now one layer 90 / 393 us, four layers 91 /
395 us: noise), while reading and blending two layers per voice costs 291 us and 897 us (x2.3 to x3.2): every voice would read two buffers for its whole life, not only during a
timbre change. And two independently generated notes are not phase-aligned, so a lasting blend of them comb-filters
(partials cancel) where the model's own layers do not; the model itself is conditioned on the nearest layer.

Tables are computed once; the audio thread only indexes them.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

CURVES: dict[str, float] = {"linear": 1.0, "soft": 0.5, "hard": 2.0}
DEFAULT_LAYERS: tuple[int, ...] = (100,)


def velocity_table(curve: str = "linear") -> np.ndarray:
    """float32[128] gains for the named curve; raises ValueError for unknown names."""
    try:
        exponent = CURVES[curve]
    except KeyError:
        raise ValueError(f"unknown velocity curve {curve!r}; choose one of {sorted(CURVES)}") from None
    table = (np.arange(128, dtype=np.float64) / 127.0) ** exponent
    table[0] = 0.0
    return table.astype(np.float32)


def normalize_layers(layers: Iterable[int] | None) -> tuple[int, ...]:
    """Sorted distinct layers, each a MIDI velocity 1-127; ``DEFAULT_LAYERS`` for None or nothing usable."""
    try:
        values = sorted({int(v) for v in layers or () if 1 <= int(v) <= 127})
    except (TypeError, ValueError):
        values = []
    return tuple(values) or DEFAULT_LAYERS


def nearest_layer(velocity: int, layers: Iterable[int]) -> int:
    """The layer nearest ``velocity``; ties go to the lower layer (as the model's ``velocity_index``)."""
    ordered = normalize_layers(layers)
    return min(ordered, key=lambda layer: (abs(layer - int(velocity)), layer))


def layer_index_table(layers: Iterable[int]) -> tuple[int, ...]:
    """128 entries: index into ``normalize_layers(layers)`` of the layer each velocity plays."""
    ordered = normalize_layers(layers)
    return tuple(ordered.index(nearest_layer(v, ordered)) for v in range(128))


def velocity_gain_table(curve: str = "linear", layers: Iterable[int] | None = None) -> np.ndarray:
    """float32[128] voice gains: the curve for a single layer, curve(v) / curve(layer of v) for several layers
    (see the module docstring for why)."""
    table = velocity_table(curve)
    ordered = normalize_layers(layers)
    if len(ordered) == 1:
        return table
    index = layer_index_table(ordered)
    gains = np.array([table[v] / table[ordered[index[v]]] for v in range(128)], dtype=np.float64)
    return gains.astype(np.float32)
