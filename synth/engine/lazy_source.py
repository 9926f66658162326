"""``LazyModelSource``: a model bundle as a ``NoteSource`` that reads only ``bundle.json`` until a note must be made.

Why: ``synth render`` / ``synth export`` of notes that are all in the disk note cache (``synth.engine.disk_cache``)
need the bundle's identity, range and map, not its networks; importing torch and loading the weights costs seconds
(2.8 s for ``import torch`` alone on this 2-core machine under load), which is most of a warm render. The first
``generate`` (or ``preview``, or ``synthesizer``) loads the bundle with ``load_bundle`` (hashes verified, probe
played) into the engine's ``ModelNoteSource`` (``synth.engine.model_source.load_model_source``); a bundle that does
not load then raises ``SourceError`` naming it. ``synth.engine.bundle_source.open_bundle(path, lazy=True)`` makes one.

``lazy_model_source(path)`` returns None whenever bundle.json is not plainly sane (no ``hash``, odd fields): the
caller then loads the bundle at once, and ``load_bundle``'s own message says what is wrong.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from synth.engine.model_source import settings_of
from synth.model.instrument import bounds_of, parse_instruments
from synth.validate import InputError, load_json_file

log = logging.getLogger(__name__)
_HASH = re.compile(r"^[0-9a-f]{12}$")
PLAY_PATHS = ("generator", "vae", "flow")  # synth.engine.synthesizer.PLAY_PATHS (not imported: it imports torch)


class SourceLoadError(Exception):
    """The bundle could not be loaded when a note had to be generated."""


def _whole(value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not lo <= value <= hi:
        raise ValueError(value)
    return int(value)


class LazyModelSource:
    def __init__(self, path: Path, info: dict, device: str | None = None) -> None:
        self.path = Path(path)
        self.info = info
        self._device = device
        self.hash = str(info["hash"])
        if not _HASH.match(self.hash):
            raise ValueError("hash")
        self.sample_rate = _whole(info["sample_rate"], 8000, 192000)
        lo, hi = info["pitch_range"]
        self.pitch_range = (_whole(lo, 0, 127), _whole(hi, 0, 127))
        if self.pitch_range[0] > self.pitch_range[1]:
            raise ValueError("pitch_range")
        layers = info.get("velocity_layers", [100])
        self.velocity_layers = tuple(_whole(v, 1, 127) for v in layers) or (100,)
        frames = _whole(info["num_frames"], 1, 1 << 20)
        codec = info.get("codec") or {}
        hop = codec.get("hop_length") or (self.sample_rate / float(codec.get("frame_rate") or info["frame_rate"]))
        hop = float(hop)
        if not (math.isfinite(hop) and hop > 0):
            raise ValueError("hop")
        duration = frames * round(hop) / self.sample_rate
        self.held_seconds = min(3.0, 0.75 * duration)  # as ModelNoteSource
        self.play_path = str(info.get("play_path", "generator"))
        if self.play_path not in PLAY_PATHS:
            raise ValueError("play_path")
        if self.play_path == "flow":
            flow = info["flow_config"]
            guidance, steps = float(flow["guidance"]), _whole(flow["sample_steps"], 1, 64)
            if not math.isfinite(guidance):
                raise ValueError("guidance")
            self._settings = settings_of("flow", guidance, steps, str(flow.get("sampler", "")),
                                         str(flow.get("layer_noise", "per_layer")))
            self._guidance: float | None = guidance
        else:
            self._guidance = None
            self._settings = settings_of(self.play_path)
        self.instruments = parse_instruments(info.get("instruments", []))  # InstrumentError is a ValueError
        self.map_bounds = bounds_of(self.instruments)
        self.label = f"model {self.path}"
        self._real = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------ loading
    def loaded(self) -> bool:
        return self._real is not None

    def real(self):
        """The engine's ``ModelNoteSource`` for this bundle (loaded on first use)."""
        with self._lock:
            if self._real is None:
                try:
                    from synth.engine.model_source import load_model_source

                    real = load_model_source(self.path, self._device)
                except Exception as exc:  # BundleError, ImportError...: the message names the bundle
                    raise SourceLoadError(f"{self.path}: {exc}") from exc
                if real.hash != self.hash:
                    raise SourceLoadError(f"{self.path}: bundle.json says hash {self.hash} but loads as {real.hash}")
                if real.generation_settings != self._settings:  # disk-cache keys made before and after would differ
                    log.warning("%s: bundle.json describes the generation as %r but the loaded model as %r; notes "
                                "cached before it loaded will not be found", self.path, self._settings,
                                real.generation_settings)
                self._real = real
            return self._real

    @property
    def synthesizer(self):
        return self.real().synthesizer

    @property
    def bundle(self):
        return self.real().bundle

    @property
    def device(self) -> str | None:
        """Where the model generates; None until it is loaded."""
        return self._real.device if self._real is not None else None

    @property
    def character(self) -> float | None:
        return self._real.character if self._real is not None else self._guidance

    def set_character(self, guidance: float) -> None:
        self.real().set_character(guidance)

    def add_anchors(self, xy: Sequence[float], pitches: Sequence[int], velocity: int, frames: np.ndarray) -> None:
        """Ignored: a lazy source serves renders and exports, which make no previews (anchors would only cost)."""

    def anchor_count(self) -> int:
        return self._real.anchor_count() if self._real is not None else 0

    def close(self) -> None:
        """Nothing to end: the model (once loaded) lives in this process."""

    @property
    def generation_settings(self) -> str:
        return self._real.generation_settings if self._real is not None else self._settings

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        return self.real().generate(xy, pitches, velocity)

    def generate_with_frames(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100):
        return self.real().generate_with_frames(xy, pitches, velocity)

    def preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        return self.real().preview(xy, pitches, velocity)

    def preview_tail(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100,
                     start_s: float = 0.0) -> tuple[int, np.ndarray]:
        return self.real().preview_tail(xy, pitches, velocity, start_s)

    def refine_preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100, tag=None,
                       fresh: bool = False):
        return self.real().refine_preview(xy, pitches, velocity, tag, fresh)


def lazy_model_source(path: str | Path, device: str | None = None) -> LazyModelSource | None:
    """A lazy source for the bundle at ``path``, or None when bundle.json is not plainly sane (load it eagerly)."""
    try:
        info = load_json_file(Path(path) / "bundle.json", max_bytes=32 << 20)
        return LazyModelSource(Path(path), info, device)
    except (InputError, KeyError, TypeError, ValueError, AttributeError):
        return None
