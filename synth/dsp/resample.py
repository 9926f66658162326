"""The one resampler of the runtime: libsoxr (HQ), for every sample-rate change and re-pitch the app makes.

Who uses it: ``synth.engine.buffers.prepare_note_buffer`` (a generated note to the output rate, in the generation
worker), ``synth.export.repitch`` (a note outside the model's range played higher or lower, as a sampler would)
and the benches. Why soxr and not scipy's ``resample_poly`` or torchaudio's sinc: it is ~4x faster on a 4 s note
here (25 notes 24->48 kHz: 0.04 s vs 0.15 s, measured under load), takes any rate ratio (a re-pitch by a
semitone is 2**(1/12)) and needs no torch; in the generation worker every millisecond spent holding the GIL is a
millisecond the audio callback may wait for it. ``synth.engine.engine.Engine`` imports soxr before audio starts: a
first import inside a worker thread holds the GIL in long stretches.

The training side keeps its own: ``synth.data.nsynth`` (torchaudio, the audio the codec was trained and encodes
on; identity for the 24 kHz SoundFont build), ``synth.data.gate`` and ``synth.eval.audio_metrics`` (torchaudio to
crepe's 16 kHz: part of those measurements' definition).
"""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, source_rate: float, target_rate: float, quality: str = "HQ") -> np.ndarray:
    """``audio`` (its last axis is time) from ``source_rate`` to ``target_rate`` as contiguous float32; the same
    array as float32 when the rates are equal. Rates may be fractional (a re-pitch)."""
    if source_rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        out = soxr.resample(np.ascontiguousarray(x), source_rate, target_rate, quality=quality)
    else:  # soxr wants [frames, channels]: one channel per row
        flat = x.reshape(-1, x.shape[-1])
        out = soxr.resample(np.ascontiguousarray(flat.T), source_rate, target_rate, quality=quality).T
        out = out.reshape(*x.shape[:-1], out.shape[-1])
    return np.ascontiguousarray(out, dtype=np.float32)
