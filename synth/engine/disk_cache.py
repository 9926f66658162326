"""The note cache on disk, shared by the live engine, ``synth render`` and ``synth export`` (issue 19).

What it holds: the audio a model source generated for one call's (point, pitch, velocity), float16 at the model's
sample rate (192 kB for a 4 s note at 24 kHz), with the codec frames it was decoded from (float16, 38 kB for 300 x
64: notes read back from disk anchor the live-morph previews as freshly generated ones do), one ``.npz`` file per
note under
``platformdirs.user_cache_dir("pgesam-synth")/notes/<2 hex>/<40 hex>.npz``. The name is the sha256 of the note's
identity: the bundle hash, the generation settings (play path; for the flow sampler also guidance, steps and sampler:
the "character" control changes them), the model's sample rate, the point quantized to the engine's note-cache cell
(0.02: points closer than that share notes, as they do in memory), the pitch and the velocity. Every path is built
from that hex digest only.

How it is used: ``DiskCachedSource`` wraps a model ``NoteSource``; its ``generate`` answers the pitches it finds on
disk and asks the model only for the others, then stores them. A render of the same file a second time therefore
generates nothing, and with ``LazyModelSource`` (``synth.engine.lazy_source``) it does not even import torch.
Generated audio is rounded to float16 before it is returned, so a first and a second render are the same samples.

Bounded: at most ``max_bytes`` (512 MiB by default, ``SYNTH_NOTE_CACHE_MB`` to change); beyond it the least
recently used files go (a hit touches its file's mtime). Safe: writes are atomic (``synth.atomic``: temp file +
rename; temp files of killed writers are removed when the cache opens); a file that does not load as the float16
array of finite numbers it should be (truncated, flipped bits: the zip CRC catches them) is deleted with one warning
naming it, and the note is generated again. A cache that cannot be written (read-only, disk full) is turned off for
the process with one warning; the instrument never fails because of it.

``SYNTH_NOTE_CACHE``: a folder to use instead of the default, or ``off`` to disable the disk cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from synth.atomic import atomic_write, clean_stale

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 512 << 20
STEP = 0.02  # the engine's note-cache cell (synth.engine.note_cache.NoteCache.step); flow seeds noise per cell too
_NAME = re.compile(r"^[0-9a-f]{40}$")
MAX_NOTE_SAMPLES = 192000 * 60  # refuse absurd files before allocating


def default_root() -> Path | None:
    """The cache folder (``SYNTH_NOTE_CACHE`` overrides; ``off`` disables: None)."""
    env = os.environ.get("SYNTH_NOTE_CACHE", "").strip()
    if env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("pgesam-synth")) / "notes"


def default_disk_cache() -> "DiskNoteCache | None":
    root = default_root()
    if root is None:
        return None
    megabytes = os.environ.get("SYNTH_NOTE_CACHE_MB", "").strip()
    try:
        max_bytes = int(float(megabytes) * (1 << 20)) if megabytes else DEFAULT_MAX_BYTES
    except ValueError:
        log.warning("SYNTH_NOTE_CACHE_MB=%r is not a number; using %d MiB", megabytes, DEFAULT_MAX_BYTES >> 20)
        max_bytes = DEFAULT_MAX_BYTES
    return DiskNoteCache(root, max_bytes=max(0, max_bytes))


class DiskNoteCache:
    """Notes on disk by identity (module docstring). Thread-safe; several processes may share the folder."""

    def __init__(self, root: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.writable = True
        self.hits = self.misses = self.writes = self.broken = 0
        self._lock = threading.Lock()
        self._bytes: int | None = None  # total size, counted at the first write
        for sub in self.root.glob("[0-9a-f][0-9a-f]") if self.root.is_dir() else ():
            clean_stale(sub)

    # ------------------------------------------------------------------------------------------------ naming
    @staticmethod
    def key(identity: str, sample_rate: int, x: float, y: float, pitch: int, velocity: int) -> str:
        qx, qy = int(round(float(x) / STEP)), int(round(float(y) / STEP))
        text = json.dumps([str(identity), int(sample_rate), qx, qy, int(pitch), int(velocity)])
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        if not _NAME.match(key):
            raise ValueError(f"not a note-cache key: {key!r}")
        return self.root / key[:2] / f"{key}.npz"

    # ------------------------------------------------------------------------------------------------ reading
    def get(self, key: str, sample_rate: int) -> np.ndarray | None:
        """float32 audio of the note, or None (missing, or broken: then the file is removed)."""
        return self.get_entry(key, sample_rate)[0]

    def get_entry(self, key: str, sample_rate: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(float32 audio, float32 frames ``[T, D]`` or None when the file has none), or (None, None)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                rate = int(data["rate"])
                audio = data["audio"]
                if audio.dtype != np.float16 or audio.ndim != 1 or not 0 < audio.size <= MAX_NOTE_SAMPLES:
                    raise ValueError(f"expected float16 [samples], got {audio.dtype} {list(audio.shape)}")
                if rate != int(sample_rate):
                    raise ValueError(f"sample rate {rate}, expected {sample_rate}")
                out = audio.astype(np.float32)
                frames = None
                if "frames" in data.files:
                    raw = data["frames"]
                    if raw.dtype != np.float16 or raw.ndim != 2 or raw.size > MAX_NOTE_SAMPLES:
                        raise ValueError(f"frames: expected float16 [T, D], got {raw.dtype} {list(raw.shape)}")
                    frames = raw.astype(np.float32)
            if not np.isfinite(out).all() or (frames is not None and not np.isfinite(frames).all()):
                raise ValueError("holds NaN or inf")
        except FileNotFoundError:
            self.misses += 1
            return None, None
        except Exception as exc:  # noqa: BLE001 - any failure to read a cache file means: generate it again
            self.broken += 1
            self.misses += 1
            log.warning("%s: broken cached note removed (%s); it is generated again", path,
                        f"{type(exc).__name__}: {exc}"[:200])
            _unlink(path)
            return None, None
        try:
            os.utime(path)  # least recently used goes first
        except OSError:
            pass
        self.hits += 1
        return out, frames

    # ------------------------------------------------------------------------------------------------ writing
    def put(self, key: str, audio: np.ndarray, sample_rate: int, frames: np.ndarray | None = None) -> None:
        """Store a note (and the codec frames it was decoded from, when given: ~38 kB more for 300 x 64)."""
        if not self.writable or self.max_bytes <= 0:
            return
        path = self.path(key)
        try:
            with atomic_write(path, fsync=False) as handle:
                arrays = {"audio": np.asarray(audio, dtype=np.float16).reshape(-1), "rate": np.int64(int(sample_rate))}
                if frames is not None:
                    arrays["frames"] = np.asarray(frames, dtype=np.float16)
                np.savez(handle, **arrays)
                handle.flush()
                size = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            self.writable = False
            log.warning("%s: the note cache cannot be written (%s); notes are not kept on disk this session",
                        self.root, exc)
            return
        self.writes += 1
        with self._lock:
            if self._bytes is None:
                self._bytes = self.nbytes()
            else:
                self._bytes += size
            over = self._bytes > self.max_bytes
        if over:
            self.evict()

    def files(self) -> list[Path]:
        return list(self.root.glob("[0-9a-f][0-9a-f]/*.npz")) if self.root.is_dir() else []

    def nbytes(self) -> int:
        total = 0
        for f in self.files():
            try:
                total += f.stat().st_size
            except OSError:
                pass
        return total

    def evict(self, target: float = 0.8) -> int:
        """Remove the least recently used files until at most ``target`` of ``max_bytes`` is used; returns how many."""
        stats = []
        for f in self.files():
            try:
                st = f.stat()
            except OSError:
                continue
            stats.append((st.st_mtime, st.st_size, f))
        stats.sort()
        total = sum(s for _, s, _ in stats)
        removed = 0
        for _, size, f in stats:
            if total <= target * self.max_bytes:
                break
            _unlink(f)
            total -= size
            removed += 1
        with self._lock:
            self._bytes = total
        return removed


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def disk_identity(source) -> str | None:
    """What, besides the call's arguments, decides a source's notes: the bundle hash and generation settings; None
    for sources not worth caching on disk (the demo source computes notes faster than it could read them)."""
    settings = getattr(source, "generation_settings", None)
    bundle = getattr(source, "hash", None)
    if settings is None or not bundle:
        return None
    return f"{bundle}|{settings}"


class DiskCachedSource:
    """A ``NoteSource`` whose ``generate`` goes through a ``DiskNoteCache`` (module docstring). Every other attribute
    (hash, pitch_range, preview, synthesizer, ...) is the wrapped source's."""

    def __init__(self, source, disk: DiskNoteCache) -> None:
        self.source = source
        self.disk = disk
        self.generated_notes = 0  # notes the model had to make (not found on disk)

    def __getattr__(self, name: str):
        if name in ("source", "disk"):  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        identity = disk_identity(self.source)
        if identity is None:
            return np.asarray(self.source.generate(xy, pitches, velocity), dtype=np.float32)
        rate = int(self.source.sample_rate)
        x, y = float(xy[0]), float(xy[1])
        keys = [self.disk.key(identity, rate, x, y, int(p), int(velocity)) for p in pitches]
        entries = [self.disk.get_entry(k, rate) for k in keys]
        found = [audio for audio, _ in entries]
        anchors = getattr(self.source, "add_anchors", None)  # notes read back still anchor live previews
        framed = [i for i, (audio, frames) in enumerate(entries) if audio is not None and frames is not None]
        if anchors is not None and framed and len({entries[i][1].shape for i in framed}) == 1:
            try:
                anchors(xy, [pitches[i] for i in framed], velocity, np.stack([entries[i][1] for i in framed]))
            except Exception as exc:  # noqa: BLE001 - frames of another shape (a changed model): no anchors
                log.info("cached frames not used as preview anchors: %s", exc)
        missing = [i for i, audio in enumerate(found) if audio is None]
        if missing:
            asked = [pitches[i] for i in missing]
            with_frames = getattr(self.source, "generate_with_frames", None)
            if with_frames is not None:
                made, frames = with_frames(xy, asked, velocity)
            else:
                made, frames = self.source.generate(xy, asked, velocity), None
            made = np.asarray(made, dtype=np.float32)
            self.generated_notes += len(missing)
            for row, i in enumerate(missing):
                audio = made[row].astype(np.float16)
                self.disk.put(keys[i], audio, rate, None if frames is None else frames[row])
                found[i] = audio.astype(np.float32)  # what the disk gives back next time: renders repeat exactly
        lengths = {len(a) for a in found}
        if len(lengths) > 1:  # files of another note length under the same identity cannot happen; be safe anyway
            n = max(lengths)
            found = [np.pad(a, (0, n - len(a))) for a in found]
        return np.stack(found).astype(np.float32, copy=False) if found else np.zeros((0, 0), np.float32)
