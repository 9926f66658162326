"""``ModelNoteSource``: the model ``Synthesizer`` of one loaded bundle as the engine's ``NoteSource``, and
``load_model_source(path)``, the one place a bundle is loaded in this process (``load_bundle``: hashes verified,
probe note played) for playing.

Consumers do not call it directly: ``synth.engine.bundle_source.open_bundle`` opens a bundle for the engine, render,
export, eval and the window, in this process, lazily (``synth.engine.lazy_source``) or in a process of its own
(``synth.engine.remote_source``), all of which build their notes with this class. Importing this module does not
import torch (the lazy source and the remote source's parent must not).
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from synth.model.instrument import Instrument, bounds_of

def settings_of(play_path: str, guidance: float | None = None, steps: int | None = None,
                sampler: str | None = None, layer_noise: str | None = None) -> str:
    """The generation-settings part of a note's identity (``ModelNoteSource.generation_settings`` agrees)."""
    if play_path != "flow":
        return play_path
    # "flow2": the sampler's noise is blended over a lattice on the map since session 6 (FlowConfig.noise_lattice),
    # so notes cached under the old per-cell noise are not served for the new one; the same for velocity layers that
    # share one noise (FlowConfig.layer_noise "shared"; bundle.json's configs are not part of the bundle hash)
    shared = ":ln=shared" if layer_noise == "shared" else ""
    return f"flow2:g={float(guidance):.6g}:s={int(steps)}:{sampler or ''}{shared}"



PREVIEW_TAIL_S = 0.3  # seconds of a preview note decoded after its held part (the default release is 0.25 s)
# Refined previews (``refine_preview``, issue 19). Measured on models/default, organ -> mallet drag, 13 points (centroid
# of the 4-note chord against the exact 8-step notes, Pearson r and median error; 4 notes on this 2-core CPU, one
# thread): the VAE shift from the start point r 0.69; the flow sampler in 1 step 0.29, 2 steps 0.99 / 38 % (27-29 ms),
# 2 steps with guidance in the first only 0.99 / 41 % (22 ms), 3 steps 1.00 / 7 % (43 ms); 2 steps at guidance 1
# 0.66. A larger guidance in the first step (2.5-3 at character 2) got the level right on this path but made silent
# chords (no centroid) at 1 of 16 random points at character 2 and 3-6 of 16 at character 4: not used.
REFINE_STEPS = 2
# Flow steps of a refinement with classifier-free guidance (2 passes); the others are plain conditional (1 pass)
REFINE_GUIDED_STEPS = 1
# Pitches per refinement call: a call runs one flow step for this many of the held notes, so a preview round plus a
# call stays short (one step for 4 notes takes 12-14 ms here, for 2 of them 5-8 ms; a round's decode ~20 ms)
REFINE_CHUNK = 2
# A refined preview is moved from only when it is nearer the asked point than this share of the nearest exact note's
# distance (the exact notes are exact, a refinement a few-step sample). bench morph, the drag back between two exact
# notes: r 0.56-0.61 with the nearest of all (1.0), 0.72-0.84 with 0.5 (0.80-0.92 without refinement)
REFINE_NEARER = 0.5
PREVIEW_FADE_S = 0.05  # fade at the end of a preview note


class ModelNoteSource:
    """Adapts the model ``Synthesizer`` + its bundle to the ``NoteSource`` protocol (hash, map bounds, range)."""

    def __init__(self, synthesizer, bundle) -> None:
        self.synthesizer = synthesizer
        self.bundle = bundle
        self.sample_rate = int(bundle.sample_rate)
        lo, hi = getattr(synthesizer, "pitch_range", None) or bundle.pitch_range  # the keys the model generates
        self.pitch_range = (int(lo), int(hi))
        self.hash = str(bundle.hash)
        # what the model generates: a distinct timbre (and level) per velocity layer; (100,) for old bundles
        self.velocity_layers = tuple(getattr(synthesizer, "velocity_layers", None) or (100,))
        self.label = f"model {getattr(bundle, 'path', '?')}"  # names the bundle in worker errors
        self.map_bounds = bounds_of(bundle.instruments)  # the region the prerendered grid covers
        samples = getattr(synthesizer, "num_samples", None)
        duration = float(samples) / self.sample_rate if samples else 4.0
        # NSynth notes: held 3 s of 4 s; shorter (test) bundles keep the same proportion
        self.held_seconds = min(3.0, 0.75 * duration)
        # (pitch, velocity, generation settings) -> [(x, y, exact frames, VAE frames)], the most recent last
        self._anchors: dict[tuple[int, int, str], list] = {}
        self._anchor_lock = threading.Lock()  # generation and preview worker threads; never the audio callback
        # (pitch, velocity, generation settings) -> (x, y, frames, VAE frames) of the newest refined preview
        # (``refine_preview``): a few-step flow sample near the finger that previews are moved from when it is nearer
        # than every exact note
        self._refined: dict[tuple[int, int, str], tuple] = {}
        self._refine_job: dict | None = None  # the refinement under way (preview thread only)
        self.refines = 0  # refinements finished

    # ------------------------------------------------------------------- what BundleSource reads (all backends)
    @property
    def info(self) -> dict:
        return self.bundle.info

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        return tuple(self.bundle.instruments)

    @property
    def play_path(self) -> str:
        return str(getattr(self.synthesizer, "play_path", "generator"))

    @property
    def device(self) -> str:
        return str(getattr(self.synthesizer, "device", "cpu"))

    @property
    def character(self) -> float | None:
        """The flow sampler's guidance; None for other play paths."""
        return float(self.synthesizer.guidance) if self.play_path == "flow" else None

    def set_character(self, guidance: float) -> None:
        self.synthesizer.set_character(guidance)

    def close(self) -> None:
        """Nothing to end: the model lives in this process."""

    @property
    def generation_settings(self) -> str:
        """What besides (point, pitch, velocity) decides the notes: the play path, and for the flow sampler its
        guidance ("character"), steps and sampler. Part of the disk note cache's key (``synth.engine.disk_cache``)."""
        synth = self.synthesizer
        path = str(getattr(synth, "play_path", "generator"))
        if path != "flow":
            return settings_of(path)
        flow = getattr(synth, "flow", None)
        cfg = getattr(flow, "cfg", None)
        return settings_of("flow", synth.guidance, synth.steps, str(getattr(cfg, "sampler", "")),
                           str(getattr(cfg, "layer_noise", "per_layer")))

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        return self.generate_with_frames(xy, pitches, velocity)[0]

    def generate_with_frames(self, xy: Sequence[float], pitches: Sequence[int],
                             velocity: int = 100) -> tuple[np.ndarray, np.ndarray | None]:
        """``generate``'s audio and the standardized frames it was decoded from (float32 ``[n, T, D]``; None for a
        synthesizer without the frame-level API). The disk note cache keeps the frames, so notes read back from
        disk still anchor previews (``add_anchors``)."""
        synth = self.synthesizer
        if not hasattr(synth, "frames"):  # a synthesizer without the frame-level API: audio only, no anchors
            return np.asarray(synth.generate(xy, list(pitches), velocity), dtype=np.float32), None
        frames = synth.frames(xy, list(pitches), velocity)
        self._remember(xy, pitches, velocity, frames)
        audio = np.asarray(synth.decode_frames(frames), dtype=np.float32)
        return audio, frames.detach().cpu().numpy().astype(np.float32, copy=False)

    def add_anchors(self, xy: Sequence[float], pitches: Sequence[int], velocity: int, frames: np.ndarray) -> None:
        """Exact frames of notes made earlier (read from the disk note cache) as preview anchors."""
        if not hasattr(self.synthesizer, "vae_frames"):
            return
        import torch

        device = getattr(self.synthesizer, "device", "cpu")
        self._remember(xy, pitches, velocity, torch.as_tensor(np.asarray(frames, np.float32), device=device))

    # -------------------------------------------------------------------------------- live-morph preview (issue 19)
    # Measured on the shipped generator bundle (frames MSE against the exact frames of the new point, 6 random drags
    # of 0.3 map widths, 3 pitches): the VAE decoder's frames 0.019, the exact frames of the start point moved by the
    # VAE's change between the two points 0.0086, the start point's frames unchanged 0.13. So a preview starts from
    # the nearest exact note generated so far (its "anchor") and adds what the VAE says changes.
    MAX_ANCHORS = 8  # exact notes remembered per (pitch, velocity), the most recent

    def _remember(self, xy, pitches, velocity: int, frames) -> None:
        synth = self.synthesizer
        if not hasattr(synth, "vae_frames"):
            return
        vae = synth.vae_frames(xy, list(pitches), velocity)
        x, y = float(xy[0]), float(xy[1])
        settings = self.generation_settings  # a new "character" makes other notes: its own anchors
        with self._anchor_lock:
            for row, pitch in enumerate(pitches):
                key = (self._clamp(pitch), int(velocity), settings)
                kept = self._anchors.setdefault(key, [])
                kept.append((x, y, frames[row].detach().clone(), vae[row].detach().clone()))
                del kept[:-self.MAX_ANCHORS]

    def _clamp(self, pitch: int) -> int:
        lo, hi = self.pitch_range
        return min(max(int(pitch), lo), hi)

    def anchor_count(self) -> int:
        """Exact notes remembered as preview anchors (refined previews are not counted)."""
        with self._anchor_lock:
            return sum(len(v) for v in self._anchors.values())

    def refined_points(self) -> dict[tuple[int, int], tuple[float, float]]:
        """(pitch, velocity) -> the point of its newest refined preview, for the current generation settings."""
        settings = self.generation_settings
        with self._anchor_lock:
            return {(k[0], k[1]): (v[0], v[1]) for k, v in self._refined.items() if k[2] == settings}

    def refine_preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100,
                       tag=None, fresh: bool = False) -> tuple[object, bool] | None:
        """One piece of a refined preview (issue 19): the flow sampler's notes in ``REFINE_STEPS`` steps from the same
        point-seeded noise as the exact notes, made one step of ``REFINE_CHUNK`` pitches per call, so the preview
        thread can spread it over its rounds (4 notes, 2 steps: 4 calls). A call continues the refinement under way
        when it is for the same pitches, velocity and settings and not ``fresh`` (``xy`` and ``tag`` are then
        ignored), else starts one at ``xy`` with ``tag`` (the worker passes its point's serial, and ``fresh`` when it
        left one unfinished: the drag ended and the exact notes came). Returns ``(tag of the refinement, finished)``;
        when finished, its frames become the pitches' refined anchor, replacing the older one: later previews are
        moved from it by the VAE's change where it is nearer the asked point than ``REFINE_NEARER`` of the nearest
        exact note's distance (at its own point, with no exact note there, the preview is the refined notes). None: this source has nothing better than ``preview`` (play
        paths other than the flow sampler)."""
        synth = self.synthesizer
        if self.play_path != "flow" or not (hasattr(synth, "flow_frame_steps") and hasattr(synth, "vae_frames")):
            return None
        pitches = [int(p) for p in pitches]
        settings = self.generation_settings
        job = self._refine_job
        if fresh or job is None or (job["pitches"], job["velocity"], job["settings"]) != (pitches, int(velocity),
                                                                                           settings):
            xy = (float(xy[0]), float(xy[1]))
            chunks = [pitches[i:i + REFINE_CHUNK] for i in range(0, len(pitches), REFINE_CHUNK)]
            job = {"pitches": pitches, "velocity": int(velocity), "settings": settings, "tag": tag, "xy": xy,
                   "calls": 0, "steps": [synth.flow_frame_steps(xy, c, velocity, REFINE_STEPS, REFINE_GUIDED_STEPS)
                                         for c in chunks],
                   "frames": [None] * len(chunks)}
            self._refine_job = job
        chunk = job["calls"] % len(job["steps"])  # step 1 of every chunk, then step 2 of every chunk...
        try:
            job["frames"][chunk] = next(job["steps"][chunk])
        except BaseException:
            self._refine_job = None  # a failed step starts afresh next time
            raise
        job["calls"] += 1
        if job["calls"] < REFINE_STEPS * len(job["steps"]):
            return job["tag"], False
        self._refine_job = None
        import torch

        x, y = job["xy"]
        frames = torch.cat(job["frames"])
        vae = synth.vae_frames((x, y), pitches, velocity)
        with self._anchor_lock:
            for row, pitch in enumerate(pitches):
                key = (self._clamp(pitch), int(velocity), settings)
                self._refined[key] = (x, y, frames[row].detach().clone(), vae[row].detach().clone())
        self.refines += 1
        return job["tag"], True

    def preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        """Fast approximate notes at ``xy`` for a drag (no generation): the nearest exact note of each pitch generated
        so far (or the newest refined preview, ``refine_preview``, where that is clearly nearer), moved by the VAE's
        change of frames between its point and ``xy``; the VAE's own frames where neither exists yet. Then the codec
        decodes them (~13 ms a note here). float32 ``[n, samples]``."""
        synth = self.synthesizer
        if not hasattr(synth, "vae_frames"):
            return self.generate(xy, pitches, velocity)
        frames, keep = self._preview_frames(xy, pitches, velocity)
        try:
            audio = np.asarray(synth.decode_frames(frames[:, :keep]), dtype=np.float32)
        except Exception:  # a codec that cannot decode a shorter sequence: the whole note, as generate does
            keep = frames.shape[1]
            audio = np.asarray(synth.decode_frames(frames), dtype=np.float32)
        return self._fade(audio, keep < frames.shape[1])

    def preview_tail(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100,
                     start_s: float = 0.0) -> tuple[int, np.ndarray]:
        """``preview``'s notes from about ``start_s`` seconds on: ``(offset, audio)`` where ``audio[:, i]`` is sample
        ``offset + i`` of what ``preview`` returns (the same samples, but a row is scaled to the peak limit by its
        own peak only). ``offset`` is a whole codec frame at or before ``start_s``. Why: held voices play the
        sustain loop (from 1 s of NSynth's 3 s held part), and the codec's synthesis of the frames before it is
        30% of a preview's decode; the worker keeps the start of what the slot plays (issue 19)."""
        synth = self.synthesizer
        if not (hasattr(synth, "vae_frames") and hasattr(synth, "decode_frames_from")):
            return 0, self.preview(xy, pitches, velocity)
        frames, keep = self._preview_frames(xy, pitches, velocity)
        hop = int(round(float(getattr(synth, "num_samples", 0) or 0) / max(1, int(getattr(synth, "num_frames", 1)))))
        start = int(math.floor(max(0.0, float(start_s)) * self.sample_rate / hop)) if hop > 0 else 0
        start = min(start, keep - 1)
        if start <= 0:
            return 0, self.preview(xy, pitches, velocity)
        audio = np.asarray(synth.decode_frames_from(frames[:, :keep], start), dtype=np.float32)
        return start * hop, self._fade(audio, keep < frames.shape[1])

    def _preview_frames(self, xy: Sequence[float], pitches: Sequence[int], velocity: int):
        """(the preview's frames ``[n, T, D]``, how many of them to decode)."""
        synth = self.synthesizer
        x, y = float(xy[0]), float(xy[1])
        import torch

        frames = synth.vae_frames(xy, list(pitches), velocity)
        settings = self.generation_settings
        with self._anchor_lock, torch.inference_mode():
            rows = []
            for row, pitch in enumerate(pitches):
                key = (self._clamp(pitch), int(velocity), settings)
                # the nearest exact note, or the newest refined preview where it is REFINE_NEARER times as near
                # (squared distances; a tie keeps the exact note)
                best = min(self._anchors.get(key, ()), key=lambda a: (a[0] - x) ** 2 + (a[1] - y) ** 2, default=None)
                refined = self._refined.get(key)
                if refined is not None and (best is None or ((refined[0] - x) ** 2 + (refined[1] - y) ** 2)
                                            < REFINE_NEARER ** 2 * ((best[0] - x) ** 2 + (best[1] - y) ** 2)):
                    best = refined
                if best is not None:
                    _, _, exact, vae = best
                    rows.append(exact + (frames[row] - vae))
                else:
                    rows.append(frames[row])
            frames = torch.stack(rows)
        # Only up to the end of the sustain loop (5/6 of the held part: see buffers.prepare_note_buffer) and a
        # release's worth after it is decoded: decoding costs in proportion to frames (2.8 of NSynth's 4 s). A
        # preview is replaced by the exact note within about a second; a voice released meanwhile with a release
        # longer than PREVIEW_TAIL_S meets a short fade at the end.
        keep = frames.shape[1]
        rate = float(getattr(synth, "num_frames", 0) or 0) / max(1e-9, float(getattr(synth, "num_samples", 0) or 0))
        if rate > 0:
            seconds = self.held_seconds * 5.0 / 6.0 + PREVIEW_TAIL_S
            keep = min(keep, int(math.ceil(seconds * rate * self.sample_rate)))
        return frames, keep

    def _fade(self, audio: np.ndarray, cut: bool) -> np.ndarray:
        fade = min(audio.shape[1], int(PREVIEW_FADE_S * self.sample_rate))
        if cut and fade > 0:
            audio[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        return audio


def leave_a_core_for_audio() -> None:
    """On CPU, torch's intra-op pool would take every core and starve the audio callback; keep one free."""
    try:
        import torch

        if not torch.cuda.is_available():
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    except Exception:
        pass


def load_model_source(path: str | Path, device: str | None = None, *, spare_core: bool = True) -> ModelNoteSource:
    """Load the bundle at ``path`` (``load_bundle``: raises its ``BundleError`` when unusable) into a ``Synthesizer``
    on ``device`` (None: CUDA when available) and adapt it. ``spare_core``: on CPU torch leaves a core for audio."""
    from synth.engine.synthesizer import Synthesizer
    from synth.model.bundle import load_bundle

    bundle = load_bundle(path, device=device)
    synth = Synthesizer(bundle, device=device) if device else Synthesizer(bundle)
    if spare_core:
        leave_a_core_for_audio()
    return ModelNoteSource(synth, bundle)


__all__ = ["ModelNoteSource", "leave_a_core_for_audio", "load_model_source", "settings_of"]
