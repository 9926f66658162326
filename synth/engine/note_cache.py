"""The note cache: in memory (device-rate buffers, ready to play) and on disk (a prerendered grid over the map).

Memory cache: keyed by ``NoteKey(bundle hash, quantized x, quantized y, pitch, velocity layer)``. ``insert`` does
all the expensive work (resampling from the model rate to the device rate, loop preparation: see ``buffers``), so a
voice only ever reads finished arrays. Least-recently-used entries are evicted beyond ``max_bytes``.

Disk grid: ``python -m synth prerender`` renders every pitch of the model at a ``size x size`` lattice over the map
(``map_bounds`` of the source) and stores one float16 ``.npy`` per point, ``[n_pitches, samples]`` at the model's
sample rate, under ``platformdirs.user_cache_dir("pgesam-synth")/grid/<bundle hash>/`` with a ``grid.json``
describing it. When the pad moves, the engine answers at once with the nearest grid point while the worker generates
the exact one. The grid never lives in the repository.

The grid is a cache: anything wrong with it must cost only the shortcut, never the instrument. A ``grid.json`` that
is not a valid description (crafted JSON, NaN bounds, absurd sizes) turns the grid off; a point file that is not the
float16 ``[n_pitches, samples]`` array of finite numbers it should be is deleted (the next prerender rebuilds it).
Both are logged with the file's path. Temp files of a prerender that was killed are removed when the store opens.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from synth.atomic import LEGACY_AGE_S, atomic_write, clean_stale, write_bytes
from synth.engine.buffers import NoteBuffer, prepare_note_buffer, splice_note_buffer
from synth.validate import InputError, finite_in_range, load_json_file

log = logging.getLogger(__name__)

MAX_GRID_SIZE = 256  # points per side; the default is 9, 256 x 256 would already be days of prerendering
MAP_LIMIT = 100.0  # the map spans about +-1; see synth.presets.MAP_COORD_RANGE
_LEGACY_TEMP = re.compile(r"^(p_\d+_\d+\.tmp\.npy|grid\.json\.tmp)$")  # temp names before they carried a pid


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
    """The generated velocity layer closest to ``velocity``, ties to the lower layer (``synth.engine.velocity``)."""
    from synth.engine.velocity import nearest_layer

    return nearest_layer(velocity, layers)


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
        """The key of a note played at ``velocity``: its layer among this cache's ``velocity_layers``."""
        return self.layer_key(bundle, x, y, pitch, velocity_layer(velocity, self.velocity_layers))

    def layer_key(self, bundle: str, x: float, y: float, pitch: int, layer: int) -> NoteKey:
        """The key of the note generated for velocity layer ``layer`` (the worker and the render bank, which know
        their source's layers, key by the layer itself)."""
        qx, qy = quantize(x, y, self.step)
        return NoteKey(bundle, qx, qy, int(pitch), int(layer))

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

    def prepare_tail(self, tail: np.ndarray, offset: int, source_rate: int, pitch: int,
                     head: NoteBuffer | None) -> NoteBuffer | None:
        """A note from ``offset`` on spliced onto ``head``'s start (``buffers.splice_note_buffer``; None when it
        cannot be)."""
        return splice_note_buffer(tail, offset, source_rate, self.sample_rate, pitch, head,
                                  held_seconds=self.held_seconds)

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
        if not (math.isfinite(x) and math.isfinite(y)):  # no nearest point to NaN; the centre is harmless
            return (self.size - 1) // 2, (self.size - 1) // 2
        n = max(1, self.size - 1)
        i = int(round((x - x0) / (x1 - x0) * n)) if x1 != x0 else 0
        j = int(round((y - y0) / (y1 - y0) * n)) if y1 != y0 else 0
        return min(max(i, 0), self.size - 1), min(max(j, 0), self.size - 1)

    def to_json(self) -> dict:
        return {"size": self.size, "bounds": [list(self.bounds[0]), list(self.bounds[1])],
                "pitches": list(self.pitches), "sample_rate": self.sample_rate, "velocity": self.velocity}

    @classmethod
    def from_json(cls, d: dict) -> "GridSpec":
        """A checked spec; ``InputError`` (naming the field) for anything a prerender could not have written."""
        if not isinstance(d, dict):
            raise InputError(f"expected an object, got {type(d).__name__}")
        try:
            (x0, x1), (y0, y1) = d["bounds"]
            pitches = tuple(_whole(p, 0, 127, "pitches") for p in d["pitches"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"missing or malformed field ({type(exc).__name__}: {exc})") from None
        if not 1 <= len(pitches) <= 128:
            raise InputError(f"pitches: {len(pitches)} pitches (expected 1 to 128)")
        bounds = tuple(tuple(finite_in_range(v, -MAP_LIMIT, MAP_LIMIT, "bounds") for v in pair)
                       for pair in ((x0, x1), (y0, y1)))
        if bounds[0][0] > bounds[0][1] or bounds[1][0] > bounds[1][1]:
            raise InputError(f"bounds: {bounds} run backwards")
        return cls(size=_whole(d.get("size"), 1, MAX_GRID_SIZE, "size"), bounds=bounds, pitches=pitches,
                   sample_rate=_whole(d.get("sample_rate"), 8000, 192000, "sample_rate"),
                   velocity=_whole(d.get("velocity", 100), 1, 127, "velocity"))


def _whole(value, lo: int, hi: int, name: str) -> int:
    number = finite_in_range(value, lo, hi, name)
    if number != int(number):
        raise InputError(f"{name}: {number:g} is not a whole number")
    return int(number)


class GridStore:
    """The on-disk grid of one bundle: ``<root>/<bundle hash>/grid.json`` + ``p_<i>_<j>.npy`` (float16)."""

    def __init__(self, bundle_hash: str, root: Path | None = None) -> None:
        self.bundle_hash = bundle_hash
        self.dir = Path(root or default_grid_root()) / bundle_hash
        self._spec: GridSpec | None = None
        self._bad_spec: tuple[float, int] | None = None  # (mtime, size) of a grid.json already refused and logged
        self._checked: dict[tuple[int, int], tuple[float, int]] = {}  # point files verified, by (mtime, size)
        self._clean_stale()

    def _clean_stale(self) -> None:
        """Temp files of a prerender that was killed (the store opens when the app or a prerender starts)."""
        clean_stale(self.dir)
        for old in self.dir.glob("*.tmp*") if self.dir.is_dir() else ():
            try:
                if _LEGACY_TEMP.match(old.name) and time.time() - old.stat().st_mtime > LEGACY_AGE_S:
                    old.unlink()
            except OSError:
                pass

    @property
    def spec(self) -> GridSpec | None:
        if self._spec is None:
            meta = self.dir / "grid.json"
            stamp = _stamp(meta)
            if stamp is not None and stamp != self._bad_spec:
                try:
                    self._spec = GridSpec.from_json(load_json_file(meta, max_bytes=1 << 20))
                except InputError as exc:
                    self._bad_spec = stamp
                    where = "" if str(exc).startswith(str(meta)) else f"{meta}: "
                    log.warning("%s%s; the prerendered grid is not used (run `synth prerender` to rebuild it)",
                                where, exc)
        return self._spec

    def create(self, spec: GridSpec) -> None:
        """Start (or resume) a grid; a different spec in the same folder is replaced."""
        self.dir.mkdir(parents=True, exist_ok=True)
        old = self.spec
        if old is not None and old != spec:
            for f in self.dir.glob("p_*.npy"):
                f.unlink()
        self._write_atomic(self.dir / "grid.json", json.dumps(spec.to_json(), indent=1).encode())
        self._spec = spec

    def path(self, i: int, j: int) -> Path:
        return self.dir / f"p_{i}_{j}.npy"

    def has(self, i: int, j: int) -> bool:
        return self.path(i, j).exists()

    def save(self, i: int, j: int, audio: np.ndarray) -> None:
        """Atomic write (tmp + rename), so an interrupted prerender never leaves a half file behind."""
        with atomic_write(self.path(i, j), fsync=False) as handle:  # a cache: no fsync, a lost file is re-rendered
            np.save(handle, np.asarray(audio, dtype=np.float16))

    def _write_atomic(self, path: Path, data: bytes) -> None:
        write_bytes(path, data, fsync=False)

    def load(self, i: int, j: int) -> np.ndarray | None:
        """float16 [n_pitches, samples] memory-mapped (cheap: rows are read when used), or None.

        A file that is not such an array of finite numbers is deleted and logged: it would otherwise stop the grid
        thread (or play garbage) at every move near it, and the next prerender writes it again.
        """
        p = self.path(i, j)
        stamp = _stamp(p)
        if stamp is None:
            return None
        try:
            data = np.load(p, mmap_mode="r")
            if self._checked.get((i, j)) != stamp:
                self._check_point(data)
                self._checked[(i, j)] = stamp
            return data
        except Exception as exc:  # noqa: BLE001 - any failure to read a cache file means: rebuild it
            log.warning("%s: broken grid point removed (%s); `synth prerender` renders it again", p,
                        f"{type(exc).__name__}: {exc}"[:200])
            _unlink(p)
            self._checked.pop((i, j), None)
            return None

    def _check_point(self, data: np.ndarray) -> None:
        """Raise ValueError unless ``data`` is what ``save`` writes for this spec (checked once per file)."""
        spec = self.spec
        rows = len(spec.pitches) if spec is not None else None
        if data.dtype != np.float16 or data.ndim != 2 or data.shape[1] == 0 or data.shape[0] != rows:
            raise ValueError(f"expected float16 [{rows}, samples], got {data.dtype} {list(data.shape)}")
        if not np.isfinite(data).all():
            raise ValueError("holds NaN or inf")

    def progress(self) -> tuple[int, int]:
        spec = self.spec
        if spec is None:
            return 0, 0
        done = sum(1 for i in range(spec.size) for j in range(spec.size) if self.has(i, j))
        return done, spec.size * spec.size


def _stamp(path: Path) -> tuple[float, int] | None:
    """(mtime, size) of a file, None when it is missing: a changed file is checked again."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
