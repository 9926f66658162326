"""``open_bundle``: the one way to open a model bundle for playing. The engine (``Engine.from_bundle``), the window,
``synth render`` / ``synth export`` / ``synth prerender``, the benches and the evaluations all open a bundle here and
get a ``BundleSource``: a ``NoteSource`` whose bundle facts (name, hash, info, instruments, pitch range, play path,
device, the flow sampler's "character") are typed attributes, so nobody reads them back with ``getattr``.

Where the model runs is a choice of the caller, not of the consumer:

- in this process (default): ``synth.engine.model_source.load_model_source`` (``load_bundle``: hashes verified, probe
  note played; raises its ``BundleError``);
- ``lazy=True``: only bundle.json is read until a note must be made (``synth.engine.lazy_source``; render and export of
  notes already in the disk cache never import torch). A bundle.json that is not plainly sane, or no disk cache,
  loads at once instead;
- ``separate_process=True`` (default: ``SYNTH_GENERATION_PROCESS=1``): the model runs in a process of its own
  (``synth.engine.remote_source``).

``disk_cache`` (default on): notes go through the disk note cache shared by the app, render and export
(``synth.engine.disk_cache``; ``SYNTH_NOTE_CACHE=off`` turns it off everywhere).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from synth.engine.disk_cache import DiskCachedSource, default_disk_cache
from synth.model.instrument import Instrument

# what a BundleSource plays through: the model in this process, the lazy one, or the one in a process of its own
Backend = Union["ModelNoteSource", "LazyModelSource", "RemoteModelSource"]  # noqa: F821


class BundleSource:
    """A model bundle opened as a note source (``open_bundle``). What the engine plays and the window shows."""

    def __init__(self, path: str | Path, backend: Backend, disk=None) -> None:
        self.path = Path(path)
        self.backend = backend
        self.disk = disk
        self._notes = DiskCachedSource(backend, disk) if disk is not None else None
        self._generated = 0  # notes made by the model when there is no disk cache (which counts its own)

    # ------------------------------------------------------------------------------------- what the bundle is
    @property
    def info(self) -> dict[str, Any]:
        """bundle.json as loaded (validated by ``load_bundle`` or, lazily, by ``LazyModelSource``)."""
        return self.backend.info

    @property
    def name(self) -> str:
        """The bundle's name (bundle.json ``name``, else its folder's)."""
        return str(self.info.get("name") or self.path.name)

    @property
    def hash(self) -> str:
        return str(self.backend.hash)

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The map's instrument points (bundle.json ``instruments``, parsed when the bundle was opened)."""
        return tuple(self.backend.instruments)

    @property
    def sample_rate(self) -> int:
        return int(self.backend.sample_rate)

    @property
    def pitch_range(self) -> tuple[int, int]:
        lo, hi = self.backend.pitch_range
        return int(lo), int(hi)

    @property
    def velocity_layers(self) -> tuple[int, ...]:
        return tuple(self.backend.velocity_layers)

    @property
    def map_bounds(self):
        return self.backend.map_bounds

    @property
    def held_seconds(self) -> float:
        return float(self.backend.held_seconds)

    @property
    def label(self) -> str:
        return str(self.backend.label)

    @property
    def play_path(self) -> str:
        """Which network plays: ``generator``, ``vae`` or ``flow`` (bundle.json ``play_path``)."""
        return str(self.backend.play_path)

    @property
    def device(self) -> str | None:
        """Where the model generates (``cpu``, ``cuda:0``...); None while a lazy source has not loaded it."""
        return self.backend.device

    @property
    def generation_settings(self) -> str:
        return self.backend.generation_settings

    # ------------------------------------------------------------------------------------- the "character"
    @property
    def character(self) -> float | None:
        """The flow sampler's guidance (the app's "character" control); None for other play paths."""
        return self.backend.character

    def set_character(self, guidance: float) -> None:
        """Change the flow sampler's guidance (validated; ValueError otherwise). Notes made before keep their sound;
        ``Engine.set_character`` also drops them from the note cache."""
        self.backend.set_character(float(guidance))

    # ------------------------------------------------------------------------------------- notes
    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        if self._notes is not None:
            return self._notes.generate(xy, pitches, velocity)
        self._generated += len(pitches)
        return self.backend.generate(xy, pitches, velocity)

    @property
    def generated_notes(self) -> int:
        """Notes the model had to make (not found in the disk cache)."""
        return self._notes.generated_notes if self._notes is not None else self._generated

    def generate_with_frames(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100):
        return self.backend.generate_with_frames(xy, pitches, velocity)

    def preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        return self.backend.preview(xy, pitches, velocity)

    def preview_tail(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100,
                     start_s: float = 0.0) -> tuple[int, np.ndarray]:
        """``preview`` from about ``start_s`` on: ``(offset, audio)`` (``ModelNoteSource.preview_tail``)."""
        tail = getattr(self.backend, "preview_tail", None)
        if tail is None:
            return 0, self.backend.preview(xy, pitches, velocity)
        return tail(xy, pitches, velocity, start_s)

    def refine_preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100, tag=None,
                       fresh: bool = False):
        """One step of a refined preview: ``(tag, finished)``, or None when the model has none
        (``ModelNoteSource.refine_preview``)."""
        refine = getattr(self.backend, "refine_preview", None)
        return None if refine is None else refine(xy, pitches, velocity, tag, fresh)

    def add_anchors(self, xy: Sequence[float], pitches: Sequence[int], velocity: int, frames: np.ndarray) -> None:
        self.backend.add_anchors(xy, pitches, velocity, frames)

    def anchor_count(self) -> int:
        return int(self.backend.anchor_count())

    # ------------------------------------------------------------------------------------- in-process model
    @property
    def synthesizer(self):
        """The ``synth.engine.synthesizer.Synthesizer`` (loads a lazy source; TypeError for one in another
        process): for evaluations and benches that drive the networks themselves."""
        return self._in_process().synthesizer

    @property
    def bundle(self):
        """The loaded ``synth.model.bundle.ModelBundle`` (as ``synthesizer``)."""
        return self._in_process().bundle

    def _in_process(self):
        from synth.engine.lazy_source import LazyModelSource

        backend = self.backend
        if isinstance(backend, LazyModelSource):
            backend = backend.real()
        if not hasattr(backend, "synthesizer"):
            raise TypeError(f"{self.path}: the model runs in another process")
        return backend

    def close(self) -> None:
        """End a model process of its own (nothing to do in this process)."""
        self.backend.close()


def open_bundle(path: str | Path, *, device: str | None = None, lazy: bool = False,
                separate_process: bool | None = None, disk_cache: bool = True,
                spare_core: bool = True) -> BundleSource:
    """Open the model bundle at ``path`` as a ``BundleSource`` (module docstring). Raises the bundle's
    ``BundleError`` (or ``RemoteError``) when it does not load. ``device``: where the model runs (None: CUDA when
    available). ``spare_core``: on CPU, torch leaves a core for the audio callback when the model loads now (a lazy
    source always does when it loads)."""
    from synth.engine.model_source import load_model_source

    path = Path(path)
    disk = default_disk_cache() if disk_cache else None
    if separate_process is None:
        separate_process = os.environ.get("SYNTH_GENERATION_PROCESS", "") == "1"
    if separate_process:
        from synth.engine.remote_source import RemoteModelSource

        return BundleSource(path, RemoteModelSource(path, device), disk)
    if lazy and disk is not None:  # without the disk cache every note needs the model: load it now
        from synth.engine.lazy_source import lazy_model_source

        backend = lazy_model_source(path, device=device)
        if backend is not None:
            return BundleSource(path, backend, disk)
    return BundleSource(path, load_model_source(path, device, spare_core=spare_core), disk)


__all__ = ["BundleSource", "open_bundle"]
