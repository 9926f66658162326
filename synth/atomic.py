"""Temp files for atomic writes, named so that a later start can find and remove the ones a killed process left.

Every file the app writes goes: temp file in the target's folder -> fsync -> ``os.replace`` onto the target, so a
crash never leaves half a file. A process killed before the replace leaves its temp file behind, though (a killed
render: as big as the WAV). So the temp name carries the writer's process id, ``.<target>.<pid>-<random><suffix>``,
and :func:`clean_stale` removes those whose process is gone. It never touches a name of another form, nor a temp
file of a process still running (a second render writing to the same folder). Temp names of versions before the
pid was in the name (``.<target>.<8 random><suffix>``) are removed once they are an hour old: no write takes that
long between creating its temp file and renaming it.

Writing (the one implementation of the pattern; every writer in ``synth`` goes through it):

- ``atomic_write(path, mode="wb", *, encoding=None, fsync=True, file_mode=None, sync_dir=False)``: a context
  manager yielding the open temp file; when the block ends without an exception the file is flushed, fsynced
  (``fsync=False`` for caches that can be rebuilt), given ``file_mode`` and moved onto ``path``; on any exception
  (``KeyboardInterrupt`` included) the temp file is removed and the target is left as it was. ``file_mode``:
  ``None`` keeps the temp file's private 0600, ``UMASK`` gives what a plain ``open()`` would (0666 less the umask),
  or an explicit mode such as 0o644. ``sync_dir`` also fsyncs the folder, so the rename itself survives a power
  cut. Parent folders are created.
- ``write_text(path, text, **kw)`` / ``write_bytes(path, data, **kw)``: the same for a whole text or byte string.
- Anything with a file-object API writes through the handle: ``torch.save(state, handle)``,
  ``np.save(handle, a)``, ``np.savez(handle, **arrays)``, ``soundfile.write(handle, ..., format="WAV")``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger(__name__)

LEGACY_AGE_S = 3600.0
_TAGGED = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+(?P<suffix>\.tmp|\.partial)$")
_LEGACY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}(?P<suffix>\.tmp)$|^\.(?P<dir>.+)\.partial-[A-Za-z0-9_]{8}$")


def temp_file_for(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` beside ``path`` with the cleanable name; returns (fd, name) like mkstemp."""
    path = Path(path)
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=suffix)


UMASK = "umask"  # file_mode: the mode a plain open() would give (0666 less the process umask)


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, encoding: str | None = None, fsync: bool = True,
                 file_mode: int | str | None = None, sync_dir: bool = False) -> Iterator[IO]:
    """Write ``path`` atomically through the yielded temp file (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_for(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        if file_mode is not None:
            os.chmod(tmp, _default_mode() if file_mode == UMASK else int(file_mode))
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_text(path: str | Path, text: str, **kw) -> None:
    """``text`` (UTF-8) to ``path`` atomically; keywords as for :func:`atomic_write`."""
    with atomic_write(path, "w", encoding="utf-8", **kw) as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes, **kw) -> None:
    """``data`` to ``path`` atomically; keywords as for :func:`atomic_write`."""
    with atomic_write(path, "wb", **kw) as handle:
        handle.write(data)


def save_torch(obj, path: str | Path, **kw) -> None:
    """``torch.save(obj)`` to ``path`` atomically (a checkpoint killed mid-write leaves the previous one whole);
    keywords as for :func:`atomic_write`."""
    import torch  # here, not at the top: the app's light modules use this file without torch

    kw.setdefault("file_mode", UMASK)
    with atomic_write(path, "wb", **kw) as handle:
        torch.save(obj, handle)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; quietly does nothing where folders cannot be opened or synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _default_mode() -> int:
    return 0o666 & ~_UMASK_BITS


def _read_umask() -> int:
    """The process umask, read once at import (setting it back at once; before any thread of ours writes files)."""
    bits = os.umask(0o022)
    os.umask(bits)
    return bits


_UMASK_BITS = _read_umask()


def _remove_quietly(name: str | Path) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def temp_dir_for(path: Path) -> Path:
    """A staging folder beside ``path`` (moved into place when complete) with the cleanable name."""
    path = Path(path)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".partial"))


def clean_stale(folder: Path, target: str | None = None) -> list[Path]:
    """Remove temp files and staging folders in ``folder`` left by processes that no longer run (only those of
    ``target`` when given); returns what was removed. Never raises: cleaning must not stop anything starting."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        owner = _stale_target(entry)
        if owner is None or (target is not None and owner != target):
            continue
        try:
            shutil.rmtree(entry.path) if entry.is_dir(follow_symlinks=False) else os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
        log.info("removed %s, left by an interrupted write", entry.path)
    return removed


def _stale_target(entry: os.DirEntry) -> str | None:
    """The target a stale temp entry belonged to, or None when the entry is not ours or still in use."""
    tagged = _TAGGED.match(entry.name)
    if tagged:
        return None if _alive(int(tagged["pid"]), entry) else tagged["target"]
    legacy = _LEGACY.match(entry.name)
    if legacy and _age(entry) > LEGACY_AGE_S:
        return legacy["target"] or legacy["dir"]
    return None


def _alive(pid: int, entry: os.DirEntry) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows: go by age instead
        return _age(entry) < LEGACY_AGE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # someone else's process (EPERM) or a pid no system has: keep the file
        return True
    return True


def _age(entry: os.DirEntry) -> float:
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0
