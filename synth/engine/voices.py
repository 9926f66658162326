"""The voice mixer: polyphonic playback of cached note buffers, shared by the live engine and offline rendering.

API (the live engine and ``synth.render`` both use exactly this)::

    mixer = Mixer(sample_rate=48000, block_size=1024, max_voices=32)
    mixer.note_on(pitch, velocity, buffer_ref)   # buffer_ref: a NoteBuffer, or a BufferSlot whose .buffer may change
    mixer.note_off(pitch)                        # release (deferred while the sustain pedal is down)
    mixer.sustain(True / False)                  # CC64
    mixer.pitch_bend(semitones)                  # applies to every voice, as a playback-rate change
    mixer.all_notes_off()                        # CC123: release every note (pedal too)
    mixer.all_sound_off()                        # CC120 / panic: fast fade of every voice, pedal and bend reset
    mixer.render(out)                            # out: float32 [frames, channels], frames <= block_size; overwritten
    mixer.attack, mixer.release                  # seconds, may be changed at any time
    mixer.set_velocity_curve("linear" | "soft" | "hard")
    mixer.set_velocity_layers((40, 70, 100, 127))  # the source's layers; mixer.layer_index(velocity) picks one
    mixer.active_voices                          # voices sounding or waiting for their buffer

Buffers come from ``synth.engine.buffers.prepare_note_buffer`` (resampled to the mixer rate, loop prepared). A voice
plays its buffer at rate ``2 ** ((pitch - buffer.pitch + bend) / 12) * buffer.sample_rate / sample_rate`` with linear
interpolation on a fractional read position, so the same buffer serves nearby pitches (notes outside the model's
range are re-pitched from the nearest generated pitch) and pitch bend costs nothing extra. While the key or the pedal
holds a voice, it loops the buffer's crossfaded sustain region; a decaying note's loop (piano, guitar, mallets)
carries the level it loses per pass as ``buffer.loop_gain``, applied at every wrap, so a held note keeps decaying
instead of jumping back up at each wrap, and its voice is freed once it has decayed below -80 dB. Once released it
plays on into the note's own decay while the release envelope fades it out. When a ``BufferSlot`` gets a new buffer
(the player moved the timbre point) every voice on that slot crossfades to it in ``timbre_crossfade`` seconds at the
same read position; a buffer swapped in meanwhile waits until that crossfade ends, then the voice crossfades to the
slot's newest buffer (during a drag the slot changes faster than a crossfade).

Velocity: a voice's gain is ``velocity_gain_table(curve, layers)[velocity]`` (``synth.engine.velocity``). With one
layer (models that ignore velocity) that is the curve itself. With several, the buffer the caller passes is the
note of the velocity's layer (``layer_index``), already at that layer's level as the model generated it, so the
gain is ``curve(v) / curve(layer)``: 1 at the layer's own velocity, the curve's shape in between. A buffer's
``level`` (1 for generated notes; a stand-in borrowed from another layer carries the ratio) multiplies the gain, and
a crossfade between buffers of different levels blends them each at its own level.

Polyphony is ``max_voices`` (soft limit) plus a few spare slots for voices that are fading out after being stolen
(hard limit ``max_voices + steal_headroom``). Stealing order: released voices, then pedal-held ones, then the oldest
held one; the victim fades out in ``steal_fade`` seconds. A re-struck key fades its previous voice the same way.

Real-time constraints: ``render`` runs in the audio callback. After construction it allocates no arrays: all work
goes through scratch buffers preallocated for ``block_size`` frames with numpy ``out=`` arguments (a test checks
this with tracemalloc). Event methods (note_on ...) are called from the same thread as ``render`` (the engine drains
its MIDI queue at the start of each callback), so the mixer needs no locks.
"""

from __future__ import annotations

import math

import numpy as np

from synth.engine.buffers import BufferSlot, NoteBuffer
from synth.engine.velocity import DEFAULT_LAYERS, layer_index_table, normalize_layers, velocity_gain_table

# Envelope states
_IDLE, _ACTIVE = 0, 1
# A held decaying note whose loop gain has fallen below this (-80 dB) has ended: its voice is freed.
_SILENT_LOOP_GAIN = 1e-4


def _wrap_index(buf: NoteBuffer, pos0: float, rate: float, frames: int) -> int:
    """Index in a block starting at read position ``pos0`` of the first sample read after the loop wraps."""
    return max(0, min(frames, int(math.ceil((buf.loop_end - pos0) / rate))))


class Voice:
    """State of one voice. Plain attributes (no arrays): the mixer's scratch buffers do the per-sample work."""

    __slots__ = ("state", "pitch", "slot", "buffer", "next_buffer", "xfade_done", "pos", "gain", "env",
                 "env_target", "env_step", "held", "sustained", "killing", "age", "loop_gain")

    def __init__(self) -> None:
        self.state = _IDLE
        self.pitch = -1
        self.slot: BufferSlot | None = None
        self.buffer: NoteBuffer | None = None
        self.next_buffer: NoteBuffer | None = None
        self.xfade_done = 0
        self.pos = 0.0
        self.gain = 0.0
        self.env = 0.0
        self.env_target = 0.0
        self.env_step = 0.0  # per-sample change toward env_target (always >= 0)
        self.held = False  # key is down
        self.sustained = False  # key is up, but the pedal holds it
        self.killing = False  # fading out fast (stolen, re-struck or panic)
        self.age = 0
        self.loop_gain = 1.0  # product of the buffer's loop_gain over the wraps so far (a held note's decay)

    @property
    def releasing(self) -> bool:
        return self.state == _ACTIVE and not self.held and not self.sustained

    def clear(self) -> None:
        self.state = _IDLE
        self.pitch = -1
        self.slot = None
        self.buffer = None
        self.next_buffer = None
        self.held = self.sustained = self.killing = False
        self.env = self.env_target = self.env_step = 0.0
        self.loop_gain = 1.0


class Mixer:
    """Polyphonic cached-note player (see module docstring for the API and its real-time rules)."""

    def __init__(self, sample_rate: int, block_size: int, max_voices: int = 32, *, steal_headroom: int = 8,
                 attack: float = 0.003, release: float = 0.25, steal_fade: float = 0.006,
                 timbre_crossfade: float = 0.03, bend_range: float = 2.0, velocity_curve: str = "linear") -> None:
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.max_voices = int(max_voices)
        self.attack = float(attack)
        self.release = float(release)
        self.steal_fade = float(steal_fade)
        self.timbre_crossfade = float(timbre_crossfade)
        self.bend_range = float(bend_range)
        self._curve = velocity_curve
        self._layers = DEFAULT_LAYERS
        self._layer_of = layer_index_table(self._layers)  # velocity -> layer index (a tuple: plain int reads)
        self._velocity = velocity_gain_table(velocity_curve, self._layers)
        self.voices = [Voice() for _ in range(self.max_voices + int(steal_headroom))]
        self._sustain = False
        self._bend_factor = 1.0
        self._bend_semitones = 0.0
        self._clock = 0
        n = self.block_size
        # Scratch buffers: positions and fractions in float64 (a 4 s note at 48 kHz needs more than float32's
        # 24-bit mantissa for sub-sample accuracy), samples in float32.
        self._ramp = np.arange(n, dtype=np.float64)
        self._ramp1 = np.arange(1, n + 1, dtype=np.float64)
        self._pos = np.empty(n, dtype=np.float64)
        self._floor = np.empty(n, dtype=np.float64)
        self._frac = np.empty(n, dtype=np.float64)
        self._frac32 = np.empty(n, dtype=np.float32)
        self._idx = np.empty(n, dtype=np.intp)
        self._a = np.empty(n, dtype=np.float32)
        self._b = np.empty(n, dtype=np.float32)
        self._voice = np.empty(n, dtype=np.float32)
        self._other = np.empty(n, dtype=np.float32)
        self._env64 = np.empty(n, dtype=np.float64)
        self._env = np.empty(n, dtype=np.float32)
        self._mix = np.empty(n, dtype=np.float32)

    # ----------------------------------------------------------------------------------------------- settings
    def set_velocity_curve(self, curve: str) -> None:
        self._velocity = velocity_gain_table(curve, self._layers)
        self._curve = curve

    def set_velocity_layers(self, layers) -> None:
        """The source's velocity layers (see the module docstring); call before playing (not from the callback)."""
        layers = normalize_layers(layers)
        gains = velocity_gain_table(self._curve, layers)
        self._layers, self._layer_of, self._velocity = layers, layer_index_table(layers), gains

    @property
    def velocity_layers(self) -> tuple[int, ...]:
        return self._layers

    def layer_index(self, velocity: int) -> int:
        """Index into ``velocity_layers`` of the layer a note at ``velocity`` plays (no allocation: callback-safe)."""
        return self._layer_of[min(max(int(velocity), 0), 127)]

    @property
    def active_voices(self) -> int:
        return sum(1 for v in self.voices if v.state == _ACTIVE)

    @property
    def sustain_down(self) -> bool:
        return self._sustain

    @property
    def bend(self) -> float:
        return self._bend_semitones

    # ----------------------------------------------------------------------------------------------- events
    def note_on(self, pitch: int, velocity: int, buffer_ref: NoteBuffer | BufferSlot | None) -> None:
        """Start a voice. velocity 0 is a note-off (MIDI convention)."""
        pitch = int(pitch)
        velocity = int(velocity)
        if velocity <= 0:
            self.note_off(pitch)
            return
        for v in self.voices:  # re-struck key: fade the previous voice of this pitch
            if v.state == _ACTIVE and v.pitch == pitch and not v.killing:
                self._kill(v)
        sounding = sum(1 for v in self.voices if v.state == _ACTIVE and not v.killing)
        if sounding >= self.max_voices:
            victim = self._steal_candidate()
            if victim is not None:
                self._kill(victim)
        voice = self._free_voice()
        self._clock += 1
        voice.state = _ACTIVE
        voice.pitch = pitch
        if isinstance(buffer_ref, BufferSlot):
            voice.slot, voice.buffer = buffer_ref, buffer_ref.buffer
        else:
            voice.slot, voice.buffer = None, buffer_ref
        voice.next_buffer = None
        voice.pos = 0.0
        # curve(v) with one layer; curve(v) / curve(layer) with several, because the layer's note already carries
        # the level the model learned for that velocity: applying the curve on top would count it twice
        voice.gain = float(self._velocity[min(velocity, 127)])
        voice.env = 0.0
        voice.env_target = 1.0
        voice.env_step = 1.0 / max(1.0, self.attack * self.sample_rate)
        voice.held, voice.sustained, voice.killing = True, False, False
        voice.age = self._clock
        voice.loop_gain = 1.0

    def note_off(self, pitch: int) -> None:
        for v in self.voices:
            if v.state == _ACTIVE and v.pitch == pitch and v.held:
                v.held = False
                if self._sustain:
                    v.sustained = True
                else:
                    self._release(v)

    def sustain(self, on: bool) -> None:
        self._sustain = bool(on)
        if not self._sustain:
            for v in self.voices:
                if v.state == _ACTIVE and v.sustained:
                    v.sustained = False
                    self._release(v)

    def pitch_bend(self, semitones: float) -> None:
        """Bend every voice by ``semitones`` (the caller maps the wheel's +-1 to +-bend_range)."""
        self._bend_semitones = float(semitones)
        self._bend_factor = 2.0 ** (self._bend_semitones / 12.0)

    def pitch_wheel(self, amount: float) -> None:
        """Wheel position in [-1, 1] -> bend of ``amount * bend_range`` semitones."""
        self.pitch_bend(max(-1.0, min(1.0, float(amount))) * self.bend_range)

    def all_notes_off(self) -> None:
        self._sustain = False
        for v in self.voices:
            if v.state == _ACTIVE and (v.held or v.sustained):
                v.held = v.sustained = False
                self._release(v)

    def all_sound_off(self) -> None:
        """Panic: every voice fades out within ``steal_fade``; pedal and bend are reset."""
        self._sustain = False
        self.pitch_bend(0.0)
        for v in self.voices:
            if v.state == _ACTIVE:
                v.held = v.sustained = False
                self._kill(v)

    # ----------------------------------------------------------------------------------------------- helpers
    def _release(self, v: Voice) -> None:
        if v.buffer is None and v.slot is not None and v.slot.buffer is None:
            v.clear()  # released before its buffer ever arrived: nothing was heard
            return
        v.env_target = 0.0
        v.env_step = max(v.env, 1e-6) / max(1.0, self.release * self.sample_rate)

    def _kill(self, v: Voice) -> None:
        v.killing = True
        v.held = v.sustained = False
        v.env_target = 0.0
        v.env_step = max(v.env, 1e-6) / max(1.0, self.steal_fade * self.sample_rate)
        if v.buffer is None and (v.slot is None or v.slot.buffer is None):
            v.clear()

    def _steal_candidate(self) -> Voice | None:
        best, best_rank = None, None
        for v in self.voices:
            if v.state != _ACTIVE or v.killing:
                continue
            rank = (0 if v.releasing else 1 if v.sustained else 2, v.age)
            if best_rank is None or rank < best_rank:
                best, best_rank = v, rank
        return best

    def _free_voice(self) -> Voice:
        for v in self.voices:
            if v.state == _IDLE:
                return v
        # Hard limit reached (every spare slot is still fading): take the quietest fading voice, else the oldest.
        fading = [v for v in self.voices if v.killing]
        victim = min(fading, key=lambda v: v.env) if fading else min(self.voices, key=lambda v: v.age)
        victim.clear()
        return victim

    # ----------------------------------------------------------------------------------------------- audio
    def render(self, out: np.ndarray) -> None:
        """Mix every voice into ``out`` (float32 [frames, channels]; the mono mix goes to every channel)."""
        frames = out.shape[0]
        if frames > self.block_size:  # never in the live engine (block size is fixed); offline callers chunk
            raise ValueError(f"render got {frames} frames, block_size is {self.block_size}")
        mix = self._mix[:frames]
        mix.fill(0.0)
        for v in self.voices:
            if v.state == _ACTIVE:
                self._render_voice(v, frames, mix)
        for c in range(out.shape[1]):
            out[:, c] = mix

    def _render_voice(self, v: Voice, frames: int, mix: np.ndarray) -> None:
        slot = v.slot
        if slot is not None:
            newest = slot.buffer  # atomic reference read: the worker may have swapped it since the last block
            if v.buffer is None:
                if newest is None:
                    return  # still waiting for the note to be generated
                v.buffer = newest
                v.pos = 0.0
            elif newest is not None and newest is not v.buffer and v.next_buffer is None:
                # a crossfade runs to its end before the next starts (from the slot's newest buffer then): one
                # restarted at every swap kept the voice on its old buffer while the preview worker swapped faster
                # than ``timbre_crossfade`` (a pad drag), and jumped back to it at each swap (issue 19)
                v.next_buffer = newest
                v.xfade_done = 0
        buf = v.buffer
        if buf is None:
            v.clear()
            return
        level = buf.level  # the gain of this block is in units of the buffer it started with
        rate = 2.0 ** ((v.pitch - buf.pitch) / 12.0) * self._bend_factor * buf.sample_rate / self.sample_rate
        looping = (v.held or v.sustained) and buf.loop_end > 0
        sig = self._voice[:frames]
        self._read(buf, v.pos, rate, frames, looping, sig)

        nxt = v.next_buffer
        if nxt is not None:  # timbre change: equal-gain crossfade from the old buffer to the new one
            other = self._other[:frames]
            self._read(nxt, v.pos, rate, frames, looping and nxt.loop_end > 0, other)
            if nxt.level != level:  # e.g. a stand-in giving way to its own layer's note: each at its own level
                np.multiply(other, nxt.level / max(level, 1e-9), out=other)
            total = max(1, int(self.timbre_crossfade * self.sample_rate))
            w = self._env64[:frames]
            np.add(self._ramp[:frames], float(v.xfade_done), out=w)
            np.multiply(w, 1.0 / total, out=w)
            np.minimum(w, 1.0, out=w)
            w32 = self._frac32[:frames]
            np.copyto(w32, w, casting="same_kind")
            np.subtract(other, sig, out=other)
            np.multiply(other, w32, out=other)
            np.add(sig, other, out=sig)
            v.xfade_done += frames
            if v.xfade_done >= total:
                v.buffer, v.next_buffer = nxt, None
                buf = nxt

        # advance the read position (wrapping inside the loop while held)
        pos0 = v.pos
        pos = pos0 + rate * frames
        wrapped = looping and pos >= buf.loop_end and buf.loop_length > 0
        if wrapped:
            pos = buf.loop_start + math.fmod(pos - buf.loop_start, buf.loop_length)
        v.pos = pos
        # a held decaying note: the gain of the wraps so far rides on the velocity gain; a wrap in this block steps
        # the samples read after it down by one more pass
        gain = v.gain * v.loop_gain
        if level != 1.0:
            gain *= level
        if wrapped and buf.loop_gain != 1.0:
            after = sig[_wrap_index(buf, pos0, rate, frames):]
            np.multiply(after, buf.loop_gain, out=after)
            v.loop_gain *= buf.loop_gain
        finished = pos >= buf.length or v.loop_gain < _SILENT_LOOP_GAIN

        # envelope: per-sample linear ramp toward the target, then the velocity gain
        if v.env == v.env_target:
            np.multiply(sig, v.env * gain, out=sig)
        else:
            env = self._env64[:frames]
            direction = 1.0 if v.env_target > v.env else -1.0
            np.multiply(self._ramp1[:frames], direction * v.env_step, out=env)
            np.add(env, v.env, out=env)
            if direction > 0:
                np.minimum(env, v.env_target, out=env)
            else:
                np.maximum(env, v.env_target, out=env)
            v.env = float(env[frames - 1])
            np.multiply(env, gain, out=env)
            env32 = self._env[:frames]
            np.copyto(env32, env, casting="same_kind")
            np.multiply(sig, env32, out=sig)
        np.add(mix, sig, out=mix)
        if finished or (v.env <= 0.0 and v.env_target <= 0.0):
            v.clear()

    def _read(self, buf: NoteBuffer, pos0: float, rate: float, frames: int, looping: bool, out: np.ndarray) -> None:
        """Linear-interpolated read of ``frames`` samples starting at fractional position ``pos0``."""
        start = int(pos0)
        if rate == 1.0 and pos0 == start and start + frames <= len(buf.data) and (
            not looping or start + frames - 1 < buf.loop_end
        ):
            # Unbent notes at the cached pitch (most of what plays): interpolation weights are all zero, so a
            # plain copy gives the same samples at a fraction of the cost (about 2x on a warm MIDI render).
            np.copyto(out, buf.data[start : start + frames])
            return
        p = self._pos[:frames]
        np.multiply(self._ramp[:frames], rate, out=p)
        np.add(p, pos0, out=p)
        if looping and pos0 + rate * (frames - 1) >= buf.loop_end:
            seg = p[_wrap_index(buf, pos0, rate, frames):]
            np.subtract(seg, buf.loop_start, out=seg)
            np.fmod(seg, buf.loop_length, out=seg)
            np.add(seg, buf.loop_start, out=seg)
        fl = self._floor[:frames]
        np.floor(p, out=fl)
        fr = self._frac[:frames]
        np.subtract(p, fl, out=fr)
        idx = self._idx[:frames]
        np.copyto(idx, fl, casting="unsafe")
        a = self._a[:frames]
        b = self._b[:frames]
        np.take(buf.data, idx, out=a, mode="clip")
        np.add(idx, 1, out=idx)
        np.take(buf.data, idx, out=b, mode="clip")
        np.subtract(b, a, out=b)
        fr32 = self._frac32[:frames]
        np.copyto(fr32, fr, casting="same_kind")
        np.multiply(b, fr32, out=b)
        np.add(a, b, out=out)
