"""``Synthesizer``: (timbre point, pitches) -> audio, the model side of the instrument.

Path: 2D point + pitch -> generator (KV-cached, batched over pitches) -> standardized frames -> destandardize with
the training statistics -> codec.decode -> waveform at the bundle's sample rate. ``generate_vae`` swaps the
generator for the VAE decoder: one forward pass, rougher ("flat") sound, useful as an instant preview.

``generate_flow`` (play path "flow", issue 15) samples the frames with the conditional flow-matching model instead:
a few ODE steps from noise seeded by the point (one point = one instrument, deterministic), with classifier-free
guidance ``guidance`` (the app's "character": 1 = plain conditional, higher = more pronounced).

Velocity: bundles whose networks are conditioned on velocity (``velocity_layers``, e.g. 40/70/100/127) play the
timbre and level of the layer nearest ``velocity``; older bundles (``(100,)``) ignore it and the engine's voices
apply the velocity curve as gain. Output rows are finite (a row with NaN/inf becomes silence) and peak-safe (scaled
down to at most ``PEAK`` when louder; never scaled up).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

PEAK = 0.98
# How far a generated note's pitch channel may stray from the asked pitch (semitones). 0: the channel is written
# from the asked pitch. Why not a band for vibrato: the v5 VAE decoder and generator ignore their pitch input on this
# channel (reconstruction MSE 0.95 on it, 0.02 on the learned dims: they write ~MIDI 60 for every note), so any
# band would leave every note at its edge, detuned by the band. The codec's own f0 correction (+-1 semitone, read
# from the learned dims) still moves the pitch within a note. See Synthesizer.lock_pitch.
PITCH_LOCK_SEMITONES = 0.0
PLAY_PATHS = ("generator", "vae", "flow")
GUIDANCE_RANGE = (0.0, 8.0)  # classifier-free guidance scales the flow path accepts ("character")
STEPS_RANGE = (1, 64)


class Synthesizer:
    def __init__(self, bundle, device: str | torch.device | None = None, max_batch: int = 32):
        self.bundle = bundle
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.vae = bundle.vae.to(self.device).eval()
        self.generator = bundle.generator.to(self.device).eval()
        self.codec = bundle.codec.to(self.device) if hasattr(bundle.codec, "to") else bundle.codec
        self.mean = torch.as_tensor(np.asarray(bundle.stats["mean"], np.float32), device=self.device)
        self.std = torch.as_tensor(np.asarray(bundle.stats["std"], np.float32), device=self.device)
        self.sample_rate = int(bundle.sample_rate)
        self.num_frames = int(bundle.num_frames)
        self.pitch_range = tuple(bundle.pitch_range)
        self.max_batch = max_batch
        self.pitch_lock = PITCH_LOCK_SEMITONES
        self.pitch_dim = self._find_pitch_dim()  # the codec's pitch channel (None: it has none)
        # Which network the instrument plays: bundle.json's "play_path" (set at bundle build from measurements).
        self.play_path = str(getattr(bundle, "info", {}).get("play_path", "generator"))
        self.flow = getattr(bundle, "flow", None)
        if self.flow is not None:
            self.flow = self.flow.to(self.device).eval()
        if self.play_path not in PLAY_PATHS or (self.play_path == "flow" and self.flow is None):
            raise ValueError(f"bundle play_path must be one of {PLAY_PATHS} (flow only with a flow model), "
                             f"not {self.play_path!r}")
        self.velocity_layers = tuple(int(v) for v in getattr(bundle, "info", {}).get("velocity_layers", [100]))
        # the flow sampler's settings (the app's "character" control is the guidance)
        self.guidance = float(self.flow.cfg.guidance) if self.flow is not None else 1.0
        self.steps = int(self.flow.cfg.sample_steps) if self.flow is not None else 0

    # -- helpers -------------------------------------------------------------------------------------------------
    def model_inputs(self, xy: Sequence[float], pitches: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The networks' inputs for a point and pitches: z ``[n, 2]`` (a non-finite point becomes the origin) and the
        pitches clamped to the model's range ``[n]`` long, on ``self.device``."""
        lo, hi = self.pitch_range
        p = torch.tensor([min(max(int(q), lo), hi) for q in pitches], dtype=torch.long, device=self.device)
        x, y = float(xy[0]), float(xy[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            x, y = 0.0, 0.0
        z = torch.tensor([[x, y]], dtype=torch.float32, device=self.device).expand(len(p), 2)
        return z, p

    def _find_pitch_dim(self) -> int | None:
        """Index of the codec's explicit pitch channel (the YIN pitch dim of the bundled codec), else None."""
        cfg = getattr(self.codec, "config", None)
        if not getattr(cfg, "pitch_feature", False):
            return None
        # the pitch dim follows the learned dims (and, from codec v6, the loudness dim)
        return int(getattr(cfg, "pitch_dim", None) or cfg.learned_dims)

    def lock_pitch(self, frames: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """Keep the codec's pitch channel within ``pitch_lock`` semitones of the asked pitch (standardized frames).

        Why: the bundled codec plays the pitch written in one embedding dim, (MIDI - 60) / 24. A regression error of
        0.14 standard deviations there is already a semitone, so a network that gets the timbre right can still play
        a wrong note, and ours do not learn the channel at all (see PITCH_LOCK_SEMITONES). The pitch is an input of
        the instrument, so the channel is clamped around it (written exactly with the default band of 0).
        Codecs without the channel are untouched."""
        if self.pitch_dim is None or self.pitch_lock is None:
            return frames
        from synth.dsp.pitch import MIDI_CENTER, MIDI_SCALE

        d = self.pitch_dim
        mean, std = self.mean[d], self.std[d]
        target = ((pitch.float() - MIDI_CENTER) / MIDI_SCALE)[:, None]  # raw units [B, 1]
        band = self.pitch_lock / MIDI_SCALE
        raw = frames[..., d] * std + mean
        locked = torch.minimum(torch.maximum(raw, target - band), target + band)
        out = frames.clone()
        out[..., d] = (locked - mean) / std
        return out

    def decode_standardized(self, frames: torch.Tensor) -> torch.Tensor:
        """Standardized frames -> the codec's raw waveform (not made safe: see ``safe_audio``)."""
        raw = frames.float() * self.std + self.mean
        return self.codec.decode(raw)

    @staticmethod
    def safe_audio(wave: torch.Tensor) -> np.ndarray:
        """float32 rows, a row with NaN/inf silenced, a row louder than ``PEAK`` scaled down to it."""
        w = wave.detach().float().cpu().numpy().astype(np.float32, copy=False)
        bad = ~np.isfinite(w).all(axis=1)
        w = np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)
        w[bad] = 0.0
        peak = np.abs(w).max(axis=1, keepdims=True) if w.size else np.zeros((len(w), 1), np.float32)
        scale = np.where(peak > PEAK, PEAK / np.maximum(peak, 1e-12), 1.0).astype(np.float32)
        return np.ascontiguousarray(w * scale, dtype=np.float32)

    def _velocity(self, velocity: float) -> int:
        v = float(velocity)
        return 100 if not math.isfinite(v) else int(min(max(round(v), 1), 127))

    def _run(self, xy, pitches, frames_fn, velocity: int = 100) -> np.ndarray:
        if len(pitches) == 0:
            return np.zeros((0, self.num_samples), np.float32)
        z, p = self.model_inputs(xy, pitches)
        v = torch.full((len(p),), self._velocity(velocity), dtype=torch.long, device=self.device)
        outs = []
        with torch.inference_mode():
            for i in range(0, len(p), self.max_batch):
                zb, pb, vb = z[i : i + self.max_batch], p[i : i + self.max_batch], v[i : i + self.max_batch]
                outs.append(self.safe_audio(self.decode_standardized(self.lock_pitch(frames_fn(zb, pb, vb), pb))))
        return np.concatenate(outs, axis=0)

    # -- frames: the live-morph preview (issue 19) -------------------------------------------------------------------
    def _frames_of(self, frames_fn, xy, pitches, velocity: int = 100) -> torch.Tensor:
        """Standardized, pitch-locked frames ``[B, T, D]`` of ``frames_fn`` (float32, on ``self.device``)."""
        z, p = self.model_inputs(xy, pitches)
        v = torch.full((len(p),), self._velocity(velocity), dtype=torch.long, device=self.device)
        with torch.inference_mode():
            return self.lock_pitch(frames_fn(z, p, v), p).float()

    def play_frames_fn(self):
        """The frames function of the bundle's play path (what ``generate`` decodes)."""
        if self.play_path == "vae":
            return lambda z, p, v: self.vae.decode(z, p, v)
        if self.play_path == "flow":
            return lambda z, p, v: self.flow.generate(z, p, v, steps=self.steps, guidance=self.guidance)
        return self.generator_frames

    def frames(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> torch.Tensor:
        """The play path's standardized frames ``[n, T, D]`` (what ``generate`` decodes to audio)."""
        return self._frames_of(self.play_frames_fn(), xy, pitches, velocity)

    def vae_frames(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> torch.Tensor:
        """The VAE decoder's standardized frames ``[n, T, D]``: one forward pass (about a millisecond for 4 notes
        on this CPU), the cheap estimate the live-morph preview moves exact frames by."""
        return self._frames_of(lambda z, p, v: self.vae.decode(z, p, v), xy, pitches, velocity)

    def flow_frame_steps(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100, steps: int = 2,
                         guided_steps: int | None = None):
        """The flow sampler's standardized, pitch-locked frames ``[n, T, D]`` at ``xy`` in ``steps`` steps, one step
        per ``next()``: a generator of the frames after each step (the last is ``frames`` with ``steps`` steps). The
        same point-seeded noise and guidance ("character") as the exact notes, so the result lands near them.
        ``guided_steps``: only the first so many steps use the guidance above 1, the others the plain conditional
        model (one pass instead of two; None: every step). Each step runs under inference mode; nothing stays
        switched on between steps. The live-morph preview's refinement (issue 19) spreads one over its rounds."""
        if self.flow is None:
            raise ValueError("this bundle has no flow model (bundle.json has no flow_config)")
        n = int(steps)
        if not STEPS_RANGE[0] <= n <= STEPS_RANGE[1]:
            raise ValueError(f"steps must be in {STEPS_RANGE}, not {steps!r}")
        z, p = self.model_inputs(xy, pitches)
        v = torch.full((len(p),), self._velocity(velocity), dtype=torch.long, device=self.device)
        g = self.guidance
        scales = [g if guided_steps is None or i < guided_steps or g < 1.0 else 1.0 for i in range(n)]
        sampler = self.flow.generate_steps(z, p, v, steps=n, guidance=scales)
        while True:
            with torch.inference_mode():
                try:
                    x = next(sampler)
                except StopIteration:
                    return
                out = self.lock_pitch(x, p).float()
            yield out

    def decode_frames(self, frames: torch.Tensor) -> np.ndarray:
        """Standardized frames ``[n, T, D]`` -> float32 audio ``[n, samples]`` (finite, peak-safe), as ``generate``."""
        with torch.inference_mode():
            return self.safe_audio(self.decode_standardized(frames.to(self.device)))

    def decode_frames_from(self, frames: torch.Tensor, start: int) -> np.ndarray:
        """The samples of ``decode_frames(frames)`` from frame ``start`` on, ``[n, (T - start) * hop]``: a codec with
        ``decode_from`` (the bundled harmonic one) synthesizes only those; the network still reads every frame, so
        they are the same samples. Peak safety (``safe_audio``) looks at these samples only."""
        start = int(start)
        with torch.inference_mode():
            raw = frames.to(self.device).float() * self.std + self.mean
            if hasattr(self.codec, "decode_from"):
                wave = self.codec.decode_from(raw, start)
            else:
                hop = getattr(self.codec, "hop_length", None) or round(self.sample_rate / self.codec.frame_rate)
                wave = self.codec.decode(raw)[:, start * int(hop):]
            return self.safe_audio(wave)

    # -- the contract ----------------------------------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        hop = getattr(self.codec, "hop_length", None) or round(self.sample_rate / self.codec.frame_rate)
        return int(self.num_frames * hop)

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        """float32 ``[len(pitches), samples]`` at ``sample_rate`` by the bundle's play path (normally the generator)."""
        if self.play_path == "vae":
            return self.generate_vae(xy, pitches, velocity)
        if self.play_path == "flow":
            return self.generate_flow(xy, pitches, velocity)
        return self.generate_generator(xy, pitches, velocity)

    def generate_generator(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        """The Transformer generator path (KV-cached), whatever the bundle's play path says."""
        return self._run(xy, pitches, self.generator_frames, velocity)

    def generator_frames(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None = None) -> torch.Tensor:
        """Standardized frames ``[B, T, D]`` of the generator (given the VAE decoder's when it refines them)."""
        from synth.model.generator import generate_frames

        return generate_frames(self.generator, self.vae, z, pitch, self.num_frames, velocity=velocity)

    def generate_vae(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        """Same as ``generate`` through the VAE decoder: one pass, fast, rougher."""
        return self._run(xy, pitches, lambda z, p, v: self.vae.decode(z, p, v), velocity)

    def generate_flow(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100,
                      guidance: float | None = None, steps: int | None = None) -> np.ndarray:
        """The flow-matching sampler path: ``steps`` ODE steps (default ``self.steps``) with classifier-free
        guidance ``guidance`` (default ``self.guidance``); the noise is seeded by the point, so a point always
        gives the same notes and its pitches share one noise."""
        if self.flow is None:
            raise ValueError("this bundle has no flow model (bundle.json has no flow_config)")
        g = self.guidance if guidance is None else float(guidance)
        n = self.steps if steps is None else int(steps)
        if not (math.isfinite(g) and GUIDANCE_RANGE[0] <= g <= GUIDANCE_RANGE[1]):
            raise ValueError(f"guidance must be a number in {GUIDANCE_RANGE}, not {guidance!r}")
        if not STEPS_RANGE[0] <= n <= STEPS_RANGE[1]:
            raise ValueError(f"steps must be in {STEPS_RANGE}, not {steps!r}")
        return self._run(xy, pitches, lambda z, p, v: self.flow.generate(z, p, v, steps=n, guidance=g), velocity)

    def set_character(self, guidance: float) -> None:
        """The musician's "character" control: the flow sampler's guidance scale (validated; no effect on other
        play paths). Notes generated before keep their sound; the caller clears its note cache."""
        g = float(guidance)
        if not (math.isfinite(g) and GUIDANCE_RANGE[0] <= g <= GUIDANCE_RANGE[1]):
            raise ValueError(f"character (guidance) must be a number in {GUIDANCE_RANGE}, not {guidance!r}")
        self.guidance = g

    def nearest_instruments(self, xy: Sequence[float], k: int = 5, split: str | None = None):
        """The ``k`` bundle instruments closest to ``xy`` on the map: ``[(Instrument, distance)]``, nearest first."""
        items = [i for i in self.bundle.instruments if split is None or i.split == split]
        x, y = float(xy[0]), float(xy[1])
        ranked = sorted(items, key=lambda i: (i.x - x) ** 2 + (i.y - y) ** 2)
        return [(i, math.hypot(i.x - x, i.y - y)) for i in ranked[:k]]
