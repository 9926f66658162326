"""The note cache: in memory (device-rate buffers, ready to play) and on disk (a prerendered grid over the map).

Memory cache: keyed by ``NoteKey(bundle hash, quantized x, quantized y, pitch, velocity layer)``. ``insert`` does
all the expensive work (resampling from the model rate to the device rate, loop preparation: see ``buffers``), so a
voice only ever reads finished arrays. Least-recently-used entries are evicted beyond ``max_bytes``.

Disk grid: ``python -m synth prerender`` renders every pitch of the model at a ``size x size`` lattice over the map
(``map_bounds`` of the source) and stores one float16 ``.npy`` per point, ``[n_pitches, samples]`` at the model's
sample rate, under ``platformdirs.user_cache_dir("pgesam-synth")/grid/<bundle hash>/`` with a ``grid.json``
describing it. When the pad moves, the engine answers at once with the nearest grid point while the worker generates
the exact one. The grid never lives in the repository.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from synth.engine.buffers import NoteBuffer, prepare_note_buffer


class NoteKey(NamedTuple):
    bundle: str
    qx: int
    qy: int
    pitch: int
    layer: int


def quantize(x: float, y: float, step: float) -> tuple[int, int]:
    """Integer cell of a map point: points closer than ``step`` share cached notes."""
    return int(round(x / step)), int(round(y / step))


def velocity_layer(velocity: int, layers: tuple[int, ...]) -> int:
    """The generated velocity layer closest to ``velocity`` (the per-note gain comes from the velocity curve)."""
    return min(layers, key=lambda v: abs(v - velocity))


class NoteCache:
    """Thread-safe LRU of prepared ``NoteBuffer``s (worker and GUI threads; never the audio callback)."""

    def __init__(self, sample_rate: int, *, step: float = 0.02, max_bytes: int = 512 << 20,
                 velocity_layers: tuple[int, ...] = (100,), held_seconds: float = 3.0) -> None:
        self.sample_rate = int(sample_rate)
        self.step = float(step)
        self.max_bytes = int(max_bytes)
        self.velocity_layers = tuple(velocity_layers)
        self.held_seconds = float(held_seconds)
        self._items: OrderedDict[NoteKey, NoteBuffer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def key(self, bundle: str, x: float, y: float, pitch: int, velocity: int = 100) -> NoteKey:
        qx, qy = quantize(x, y, self.step)
        return NoteKey(bundle, qx, qy, int(pitch), velocity_layer(velocity, self.velocity_layers))

    def get(self, key: NoteKey) -> NoteBuffer | None:
        with self._lock:
            buf = self._items.get(key)
            if buf is not None:
                self._items.move_to_end(key)
            return buf

    def __contains__(self, key: NoteKey) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def prepare(self, audio: np.ndarray, source_rate: int, pitch: int, key: object = None) -> NoteBuffer:
        """Resample + loop-prepare one note (the costly part, done outside the lock)."""
        return prepare_note_buffer(audio, source_rate, self.sample_rate, pitch, held_seconds=self.held_seconds,
                                   key=key)

    def put(self, key: NoteKey, buffer: NoteBuffer) -> NoteBuffer:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = buffer
            self._bytes += buffer.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
        return buffer

    def insert(self, key: NoteKey, audio: np.ndarray, source_rate: int) -> NoteBuffer:
        return self.put(key, self.prepare(audio, source_rate, key.pitch, key))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


# --------------------------------------------------------------------------------------------------- disk grid
def default_grid_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("pgesam-synth")) / "grid"


@dataclass(frozen=True)
class GridSpec:
    size: int
    bounds: tuple[tuple[float, float], tuple[float, float]]
    pitches: tuple[int, ...]
    sample_rate: int
    velocity: int = 100

    def point(self, i: int, j: int) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.bounds
        n = max(1, self.size - 1)
        return (x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * j / n)

    def nearest(self, x: float, y: float) -> tuple[int, int]:
        (x0, x1), (y0, y1) = self.bounds
        n = max(1, self.size - 1)
        i = int(round((x - x0) / (x1 - x0) * n)) if x1 != x0 else 0
        j = int(round((y - y0) / (y1 - y0) * n)) if y1 != y0 else 0
        return min(max(i, 0), self.size - 1), min(max(j, 0), self.size - 1)

    def to_json(self) -> dict:
        return {"size": self.size, "bounds": [list(self.bounds[0]), list(self.bounds[1])],
                "pitches": list(self.pitches), "sample_rate": self.sample_rate, "velocity": self.velocity}

    @classmethod
    def from_json(cls, d: dict) -> "GridSpec":
        (x0, x1), (y0, y1) = d["bounds"]
        return cls(size=int(d["size"]), bounds=((float(x0), float(x1)), (float(y0), float(y1))),
                   pitches=tuple(int(p) for p in d["pitches"]), sample_rate=int(d["sample_rate"]),
                   velocity=int(d.get("velocity", 100)))


class GridStore:
    """The on-disk grid of one bundle: ``<root>/<bundle hash>/grid.json`` + ``p_<i>_<j>.npy`` (float16)."""

    def __init__(self, bundle_hash: str, root: Path | None = None) -> None:
        self.bundle_hash = bundle_hash
        self.dir = Path(root or default_grid_root()) / bundle_hash
        self._spec: GridSpec | None = None

    @property
    def spec(self) -> GridSpec | None:
        if self._spec is None:
            meta = self.dir / "grid.json"
            if meta.exists():
                try:
                    self._spec = GridSpec.from_json(json.loads(meta.read_text()))
                except (ValueError, KeyError, TypeError):
                    return None
        return self._spec

    def create(self, spec: GridSpec) -> None:
        """Start (or resume) a grid; a different spec in the same folder is replaced."""
        self.dir.mkdir(parents=True, exist_ok=True)
        old = self.spec
        if old is not None and old != spec:
            for f in self.dir.glob("p_*.npy"):
                f.unlink()
        tmp = self.dir / "grid.json.tmp"
        tmp.write_text(json.dumps(spec.to_json(), indent=1))
        os.replace(tmp, self.dir / "grid.json")
        self._spec = spec

    def path(self, i: int, j: int) -> Path:
        return self.dir / f"p_{i}_{j}.npy"

    def has(self, i: int, j: int) -> bool:
        return self.path(i, j).exists()

    def save(self, i: int, j: int, audio: np.ndarray) -> None:
        """Atomic write (tmp + rename), so an interrupted prerender never leaves a half file behind."""
        tmp = self.dir / f"p_{i}_{j}.tmp.npy"
        np.save(tmp, np.asarray(audio, dtype=np.float16))
        os.replace(tmp, self.path(i, j))

    def load(self, i: int, j: int) -> np.ndarray | None:
        """float16 [n_pitches, samples] memory-mapped (cheap: rows are read when used), or None."""
        p = self.path(i, j)
        if not p.exists():
            return None
        try:
            return np.load(p, mmap_mode="r")
        except (OSError, ValueError):
            return None

    def progress(self) -> tuple[int, int]:
        spec = self.spec
        if spec is None:
            return 0, 0
        done = sum(1 for i in range(spec.size) for j in range(spec.size) if self.has(i, j))
        return done, spec.size * spec.size
