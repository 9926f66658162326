"""Note buffers as the voices play them: device-rate audio with a crossfaded sustain loop already baked in.

Everything expensive about a note (resampling from the model's 24 kHz to the device rate, sanitising NaN/inf,
preparing the loop crossfade) happens here, once, when a note enters the cache: never in the audio callback.

A ``BufferSlot`` is the hand-over point between the generation worker and the audio thread: the worker assigns a new
``NoteBuffer`` to ``slot.buffer`` (a single reference store, atomic under the GIL) and every voice that plays from
that slot notices the new object at its next block and crossfades to it. No lock is ever taken by the callback.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Hashable

import numpy as np

from synth.dsp.resample import resample as _resample

# Zero samples appended after the audio: the linear interpolator reads index+1, and a voice that runs off the
# end of the note then reads silence instead of needing a bounds check per sample.
GUARD = 4
# Decaying notes (piano, guitar, mallets) lose level over the sustain loop; wrapping back to its start would jump
# the level up by that loss on every pass (the shipped model's "Grand Keys", key held: -52 -> -44 dB every 1.5 s).
# Such loops carry the loss as a gain the voice applies at each wrap, so a held note keeps decaying instead.
# A loop that loses less than this is steady: no gain. Measured on the shipped presets (MIDI 48-72, dB lost over
# the 1.5 s loop): strings and synth lead 0 to 1.8 (they sustain, with some drift), brass, flute, organ, reed 0;
# keys, guitar, mallets, bass 5.4 to 12.1.
STEADY_LOOP_DB = 3.0
MIN_LOOP_GAIN = 0.01  # at most -40 dB per pass: guards against a near-silent loop end


@dataclass(frozen=True, eq=False)
class NoteBuffer:
    """One playable note. ``data`` is float32 ``[length + GUARD]`` at ``sample_rate``; ``pitch`` is the MIDI pitch it
    sounds at when played at rate 1. While a key (or the pedal) holds the voice, playback wraps from ``loop_end``
    back to ``loop_start``; ``loop_end == 0`` means the note has no loop (too short)."""

    data: np.ndarray
    sample_rate: int
    pitch: int
    length: int
    loop_start: int = 0
    loop_end: int = 0
    key: Hashable | None = None
    loop_gain: float = 1.0  # level lost over one loop pass (<= 1): the voice multiplies by it at every wrap
    # Gain the voice applies to this buffer: 1.0 for a note as generated. A stand-in (the note of another velocity
    # layer, shared until its own layer is generated: see ``stand_in``) carries the level ratio of the two layers.
    level: float = 1.0

    @property
    def loop_length(self) -> int:
        return self.loop_end - self.loop_start

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


@dataclass(eq=False)
class BufferSlot:
    """A mutable reference to the buffer a pitch should sound with right now (see module docstring)."""

    buffer: NoteBuffer | None = None
    # Free-form tag for the worker (e.g. the point the buffer belongs to, and whether it is exact or from the grid).
    tag: tuple = field(default_factory=tuple)


def stand_in(buffer: NoteBuffer, level: float, key: Hashable | None = None) -> NoteBuffer:
    """The same audio (shared, not copied) played at ``level`` times its own: a layer not generated yet borrows
    the note of the nearest generated layer at an estimate of its own level."""
    return replace(buffer, level=float(level) * buffer.level, key=key if key is not None else buffer.key)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample the last axis to ``target_rate`` with the runtime's one resampler (``synth.dsp.resample``: libsoxr,
    HQ); identity when the rates match."""
    return _resample(audio, int(source_rate), int(target_rate))


def prepare_note_buffer(
    audio: np.ndarray,
    source_rate: int,
    target_rate: int,
    pitch: int,
    *,
    held_seconds: float = 3.0,
    loop_start_s: float | None = None,
    loop_end_s: float | None = None,
    crossfade_s: float | None = None,
    key: Hashable | None = None,
    decay_loop: bool = True,
) -> NoteBuffer:
    """Resample one note to the device rate and bake in its sustain loop.

    The loop lies inside the held part (NSynth-style notes are held for ``held_seconds`` and then decay). To make the
    jump from ``loop_end`` back to ``loop_start`` seamless, the last ``crossfade_s`` before ``loop_end`` is blended
    (equal power) with the audio just before ``loop_start``: at the wrap the signal therefore continues exactly as
    it did at ``loop_start``. Notes too short for the loop get none (they simply end). Defaults scale with the held
    part: the loop spans 1/3 .. 5/6 of it (1.0-2.5 s for NSynth's 3 s), the crossfade is 0.15 s or 1/10 of it.

    With ``decay_loop`` a loop whose end is quieter than its start (see ``loop_decay_gain``) gets that ratio as
    ``loop_gain`` and the crossfade blends toward the loop start *scaled by it*, so the wrap continues the decay
    (the voice applies the gain). Without it (sample-pack export: SFZ players apply no such gain) the loop wraps
    back to its start level as before."""
    data = resample(np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0),
                    source_rate, target_rate)
    length = int(data.shape[-1])
    padded = np.zeros(length + GUARD, dtype=np.float32)
    padded[:length] = data
    return _bake_loop(padded, length, target_rate, pitch, held_seconds, loop_start_s, loop_end_s, crossfade_s, key,
                      decay_loop)


def loop_region(held_seconds: float = 3.0) -> tuple[float, float, float]:
    """(loop start, loop end, crossfade) in seconds: ``prepare_note_buffer``'s defaults for a held part."""
    return held_seconds / 3.0, held_seconds * 5.0 / 6.0, min(0.15, held_seconds / 10.0)


# A preview spliced onto the start of the buffer it replaces (``splice_note_buffer``): the resampler's first samples
# of a cut note differ from the whole note's (its filter sees silence before the cut), so the splice lies this far
# after the cut, and the two are crossfaded over SPLICE_SEAM_S there.
SPLICE_MARGIN_S = 0.02
SPLICE_SEAM_S = 0.01


def splice_note_buffer(tail: np.ndarray, offset: int, source_rate: int, target_rate: int, pitch: int,
                       head: NoteBuffer | None, *, held_seconds: float = 3.0,
                       key: Hashable | None = None) -> NoteBuffer | None:
    """A note whose samples from ``offset`` (at ``source_rate``) on are ``tail`` and whose start is ``head``'s (the
    buffer the slot plays now), loop baked as ``prepare_note_buffer`` does. From the splice point (``offset`` +
    ``SPLICE_MARGIN_S`` + ``SPLICE_SEAM_S``) on the data equals ``prepare_note_buffer`` of the whole note (to the
    resampler's rounding); before it, ``head``'s: a voice already past it (a held voice in its sustain loop) hears
    exactly the new note, a voice struck meanwhile hears the old note's attack turning into the new one. The live
    morph's previews (issue 19): the frames before the sustain loop need not be synthesized for held voices.
    None when ``head`` cannot give the start (none, another rate or level, too short) or the splice would fall in
    the loop's crossfade: the caller makes the whole note instead."""
    ratio = float(target_rate) / float(source_rate)
    cut = int(round(offset * ratio))
    margin = int(round(SPLICE_MARGIN_S * target_rate))
    seam = max(1, int(round(SPLICE_SEAM_S * target_rate)))
    at = cut + margin  # the seam starts here
    loop_start_s, _, crossfade_s = loop_region(held_seconds)
    if (head is None or head.level != 1.0 or head.sample_rate != int(target_rate) or head.length < at + seam
            or offset <= 0 or at + seam > int(round((loop_start_s - crossfade_s) * target_rate))):
        return None
    data = resample(np.nan_to_num(np.asarray(tail, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0),
                    source_rate, target_rate)
    if data.shape[-1] < margin + seam:
        return None
    length = cut + int(data.shape[-1])
    padded = np.zeros(length + GUARD, dtype=np.float32)
    padded[:at] = head.data[:at]
    ramp = (np.arange(seam, dtype=np.float32) + 0.5) / seam
    padded[at:at + seam] = head.data[at:at + seam] * (1.0 - ramp) + data[margin:margin + seam] * ramp
    padded[at + seam:length] = data[margin + seam:]
    return _bake_loop(padded, length, target_rate, pitch, held_seconds, None, None, None, key, True)


def _bake_loop(padded: np.ndarray, length: int, target_rate: int, pitch: int, held_seconds: float,
               loop_start_s: float | None, loop_end_s: float | None, crossfade_s: float | None,
               key: Hashable | None, decay_loop: bool) -> NoteBuffer:
    """The sustain loop of ``prepare_note_buffer`` baked into ``padded`` (``length`` samples + GUARD zeros)."""
    loop_start_s = held_seconds / 3.0 if loop_start_s is None else loop_start_s
    loop_end_s = held_seconds * 5.0 / 6.0 if loop_end_s is None else loop_end_s
    crossfade_s = min(0.15, held_seconds / 10.0) if crossfade_s is None else crossfade_s
    ls = int(round(loop_start_s * target_rate))
    le = int(round(min(loop_end_s, held_seconds) * target_rate))
    xf = int(round(crossfade_s * target_rate))
    gain = 1.0
    if xf > 0 and ls >= xf and le - ls >= 2 * xf and le <= length:
        w = (np.arange(xf, dtype=np.float64) + 0.5) / xf
        tail = padded[le - xf : le].astype(np.float64)
        lead = padded[ls - xf : ls].astype(np.float64)
        gain = loop_decay_gain(lead, tail) if decay_loop else 1.0
        padded[le - xf : le] = (tail * np.cos(w * np.pi / 2) + gain * lead * np.sin(w * np.pi / 2)).astype(np.float32)
    else:
        ls = le = 0
    return NoteBuffer(data=padded, sample_rate=int(target_rate), pitch=int(pitch), length=length,
                      loop_start=ls, loop_end=le, key=key, loop_gain=gain)


def loop_decay_gain(lead: np.ndarray, tail: np.ndarray) -> float:
    """RMS of the audio before the loop end over that before the loop start, when the loop loses more than
    ``STEADY_LOOP_DB``; 1.0 for steady or growing loops (a gain above 1 per pass would grow without bound)."""
    lead_rms = float(np.sqrt(np.mean(np.square(lead))))
    tail_rms = float(np.sqrt(np.mean(np.square(tail))))
    if not lead_rms > 0.0 or not np.isfinite(lead_rms) or not np.isfinite(tail_rms):
        return 1.0
    ratio = tail_rms / lead_rms
    if ratio >= 10.0 ** (-STEADY_LOOP_DB / 20.0):
        return 1.0
    return max(ratio, MIN_LOOP_GAIN)
