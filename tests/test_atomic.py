"""synth.atomic's writer: the one implementation of temp file -> fsync -> rename that every writer in synth uses."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from synth.atomic import UMASK, atomic_write, clean_stale, write_bytes, write_text


def test_write_text_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.json"  # the folder is created
    write_text(target, "one")
    write_text(target, "two", sync_dir=True)
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    target = tmp_path / "a.bin"
    write_bytes(target, b"old")
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error):
            with atomic_write(target) as handle:
                handle.write(b"half")
                raise error()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_file_modes(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    write_bytes(tmp_path / "private", b"x")
    write_bytes(tmp_path / "plain", b"x", file_mode=UMASK)
    write_bytes(tmp_path / "given", b"x", file_mode=0o640)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"private": 0o600, "plain": 0o666 & ~umask, "given": 0o640}


def test_numpy_and_torch_write_through_the_handle(tmp_path):
    torch = pytest.importorskip("torch")
    with atomic_write(tmp_path / "a.npz", fsync=False) as handle:
        np.savez(handle, a=np.arange(3))
    with atomic_write(tmp_path / "w.pt") as handle:
        torch.save({"w": torch.ones(2)}, handle)
    assert np.load(tmp_path / "a.npz")["a"].tolist() == [0, 1, 2]
    assert torch.load(tmp_path / "w.pt")["w"].tolist() == [1.0, 1.0]


def test_the_temp_file_of_a_killed_writer_is_cleaned(tmp_path):
    """A writer killed inside the block leaves its pid-tagged temp file; clean_stale removes it once it is gone."""
    code = ("import os, sys; from synth.atomic import atomic_write\n"
            f"with atomic_write({str(tmp_path / 'a.bin')!r}) as h:\n    h.write(b'x'); h.flush(); os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".a.bin.") and left[0].endswith(".tmp")
    assert [p.name for p in clean_stale(tmp_path)] == left
    assert list(tmp_path.iterdir()) == []


def test_save_torch_leaves_the_old_checkpoint_whole_when_the_write_fails(tmp_path):
    import torch

    from synth.atomic import save_torch

    path = tmp_path / "ckpt.pt"
    save_torch({"step": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        save_torch({"step": 2, "bad": Boom()}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
