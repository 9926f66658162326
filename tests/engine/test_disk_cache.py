"""The disk note cache shared by the engine, render and export (issue 19): keys, LRU bound, broken files, the
wrapped model source, and a second `synth render` that generates nothing and never imports torch."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synth.engine.disk_cache import DiskCachedSource, DiskNoteCache, default_root, disk_identity
from synth.engine.sources import SineNoteSource

ROOT = Path(__file__).resolve().parents[2]


def note(seed=0, n=4800):
    return (0.5 * np.sin(np.arange(n) * 0.01 * (seed + 1))).astype(np.float32)


def test_keys_cells_and_paths(tmp_path):
    k = DiskNoteCache.key("abc|generator", 24000, 0.305, -0.1, 60, 100)
    assert k == DiskNoteCache.key("abc|generator", 24000, 0.30999, -0.1, 60, 100)  # one 0.02 cell
    for other in (("abd|generator", 24000, 0.305, -0.1, 60, 100), ("abc|flow:g=2", 24000, 0.305, -0.1, 60, 100),
                  ("abc|generator", 24000, 0.345, -0.1, 60, 100), ("abc|generator", 24000, 0.305, -0.1, 61, 100),
                  ("abc|generator", 24000, 0.305, -0.1, 60, 40), ("abc|generator", 16000, 0.305, -0.1, 60, 100)):
        assert DiskNoteCache.key(*other) != k
    cache = DiskNoteCache(tmp_path)
    assert cache.path(k) == tmp_path / k[:2] / f"{k}.npz"
    with pytest.raises(ValueError, match="not a note-cache key"):
        cache.path("../../etc/passwd")


def test_round_trip_float16_and_lru_bound(tmp_path):
    one = DiskNoteCache(tmp_path).key("b|g", 24000, 0, 0, 60, 100)
    cache = DiskNoteCache(tmp_path, max_bytes=10**9)
    cache.put(one, note(), 24000)
    back = cache.get(one, 24000)
    np.testing.assert_array_equal(back, note().astype(np.float16).astype(np.float32))
    assert cache.get(DiskNoteCache.key("b|g", 24000, 0, 0, 61, 100), 24000) is None
    size = cache.path(one).stat().st_size
    keys = [cache.key("b|g", 24000, 0, 0, p, 100) for p in range(61, 64)]
    for i, k in enumerate(keys):
        cache.put(k, note(i), 24000)
        os.utime(cache.path(k), (time.time() - 100 + i, time.time() - 100 + i))  # 61 oldest ... 63 newest
    os.utime(cache.path(one), (time.time() - 1000, time.time() - 1000))
    small = DiskNoteCache(tmp_path, max_bytes=int(4.5 * size))  # five files are too many
    assert small.get(keys[0], 24000) is not None  # a hit makes 61 the most recently used
    small.put(small.key("b|g", 24000, 0, 0, 64, 100), note(9), 24000)  # over the bound: LRU files go
    left = {p.stem for p in small.files()}  # down to 80 %: the two least recently used went
    assert one not in left and keys[1] not in left and keys[0] in left and keys[2] in left
    assert small.nbytes() <= small.max_bytes


@pytest.mark.parametrize("damage", ["truncated", "flipped", "float32", "nan", "rate", "garbage", "frames"])
def test_a_broken_file_is_removed_named_and_generated_again(tmp_path, caplog, damage):
    cache = DiskNoteCache(tmp_path)
    key = cache.key("b|g", 24000, 0, 0, 60, 100)
    cache.put(key, note(), 24000)
    path = cache.path(key)
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped":  # one bit inside the audio: the zip CRC catches it
        i = len(raw) // 2
        path.write_bytes(raw[:i] + bytes([raw[i] ^ 0x10]) + raw[i + 1:])
    elif damage == "float32":
        np.savez(path, audio=note(), rate=np.int64(24000))
    elif damage == "nan":
        np.savez(path, audio=np.full(100, np.nan, np.float16), rate=np.int64(24000))
    elif damage == "frames":  # audio fine, the stored codec frames not
        np.savez(path, audio=note().astype(np.float16), rate=np.int64(24000), frames=np.full((4, 3), np.inf, np.float16))
    elif damage == "rate":
        np.savez(path, audio=note().astype(np.float16), rate=np.int64(16000))
    else:
        path.write_bytes(b"not a cache file at all")
    with caplog.at_level(logging.WARNING, logger="synth.engine.disk_cache"):
        assert cache.get(key, 24000) is None
    assert not path.exists() and str(path) in caplog.text and cache.broken == 1
    cache.put(key, note(), 24000)  # generated again, it is kept again
    assert cache.get(key, 24000) is not None


class _Counting(SineNoteSource):
    """The demo source with a cache identity (as a model source has) and a call count."""

    def __init__(self, **kw):
        super().__init__(pitch_range=(55, 70), duration=0.5, **kw)
        self.made: list[int] = []

    @property
    def generation_settings(self):
        return "test"

    def generate(self, xy, pitches, velocity=100):
        self.made += list(pitches)
        return super().generate(xy, pitches, velocity)


def test_the_wrapped_source_generates_only_what_the_disk_lacks(tmp_path):
    src = _Counting()
    cached = DiskCachedSource(src, DiskNoteCache(tmp_path))
    first = cached.generate((0.2, 0.1), [60, 62], 100)
    assert src.made == [60, 62] and cached.generated_notes == 2
    second = DiskCachedSource(_Counting(), DiskNoteCache(tmp_path))  # a new process, the same folder
    again = second.generate((0.2, 0.1), [62, 64, 60], 100)
    assert second.source.made == [64] and second.generated_notes == 1
    np.testing.assert_array_equal(again[[2, 0]], first)  # float16-rounded both times: exactly the same samples
    assert second.pitch_range == (55, 70) and second.preview is not None  # everything else is the source's
    plain = DiskCachedSource(SineNoteSource(), DiskNoteCache(tmp_path / "other"))
    assert disk_identity(plain.source) is None
    plain.generate((0, 0), [60])
    assert not (tmp_path / "other").exists()  # the demo source is not worth caching


def test_an_unwritable_cache_is_switched_off_with_one_warning(tmp_path, caplog):
    (tmp_path / "file").write_text("x")
    cache = DiskNoteCache(tmp_path / "file" / "notes")
    src = DiskCachedSource(_Counting(), cache)
    with caplog.at_level(logging.WARNING, logger="synth.engine.disk_cache"):
        out = src.generate((0, 0), [60, 61])
        src.generate((0.5, 0), [60])
    assert out.shape[0] == 2 and not cache.writable
    assert caplog.text.count("cannot be written") == 1


def test_environment_chooses_or_disables_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTH_NOTE_CACHE", "off")
    assert default_root() is None
    monkeypatch.setenv("SYNTH_NOTE_CACHE", str(tmp_path))
    assert default_root() == tmp_path


@pytest.fixture(params=[False, True], ids=["generator", "flow"])
def tiny(request, tmp_path_factory):
    from synth.model.bundle import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("b") / "tiny", seed=5, flow=request.param)


def test_model_notes_are_keyed_by_bundle_and_settings(tiny, tmp_path, one_torch_thread):
    from synth.engine.bundle_source import open_bundle

    model = open_bundle(tiny, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
    src = DiskCachedSource(model, DiskNoteCache(tmp_path))
    a = src.generate((0.1, 0.2), [60], 100)
    np.testing.assert_allclose(a, model.synthesizer.generate((0.1, 0.2), [60], 100), atol=1e-3)  # float16
    src.generate((0.1, 0.2), [60], 100)
    assert src.generated_notes == 1
    if model.play_path == "flow":  # another character makes other notes: not served from disk
        model.set_character(model.character + 1.0)
        src.generate((0.1, 0.2), [60], 100)
        assert src.generated_notes == 2


def _render(args, env):
    done = subprocess.run([sys.executable, "-m", "synth", "render", *args, "--quiet", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def test_a_second_render_generates_nothing_and_never_imports_torch(tiny, tmp_path):
    from tests.test_render import write_song

    song = write_song(tmp_path / "song.mid")
    env = dict(os.environ, SYNTH_NOTE_CACHE=str(tmp_path / "notes"))
    code, out, err = _render([str(song), "-o", str(tmp_path / "a.wav"), "--bundle", str(tiny)], env)
    assert code == 0, err
    first = json.loads(out.strip().splitlines()[-1])
    assert first["notes_generated"] > 0
    # the second run with a torch that cannot be imported: every note must come from the disk cache
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch imported by a warm render')\n")
    blocked = dict(env, PYTHONPATH=str(tmp_path / "no_torch"))
    code, out, err = _render([str(song), "-o", str(tmp_path / "b.wav"), "--bundle", str(tiny)], blocked)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["notes_generated"] == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    # a note the cache lacks needs the model: then the failure is a clear one-line error, exit 1
    code, out, err = _render([str(song), "-o", str(tmp_path / "c.wav"), "--bundle", str(tiny), "--preset", "0.9,0.9"],
                             blocked)
    assert code == 1 and str(tiny) in err and "torch imported by a warm render" in err and "Traceback" not in err
    # and an export of notes already on disk does not load the model either
    done = subprocess.run([sys.executable, "-m", "synth", "export", "--xy", "0.9", "0.9", "--pitches", "60",
                           "-o", str(tmp_path / "pack"), "--bundle", str(tiny), "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "synth", "export", "--xy", "0.9", "0.9", "--pitches", "60",
                           "-o", str(tmp_path / "pack2"), "--bundle", str(tiny), "--quiet"], cwd=ROOT, env=blocked,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def test_notes_read_back_from_disk_anchor_previews(tiny, tmp_path, one_torch_thread):
    from synth.engine.bundle_source import open_bundle

    first = DiskCachedSource(open_bundle(tiny, device="cpu", disk_cache=False, separate_process=False, spare_core=False), DiskNoteCache(tmp_path))
    exact = first.generate((0.3, -0.2), [55, 60], 100)
    with np.load(next(iter(first.disk.files()))) as data:
        assert data["frames"].dtype == np.float16 and data["frames"].ndim == 2
    # a new session: nothing generated, the notes come from disk, and they anchor the previews
    model = open_bundle(tiny, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
    again = DiskCachedSource(model, DiskNoteCache(tmp_path))
    np.testing.assert_array_equal(again.generate((0.3, -0.2), [55, 60], 100), exact)
    assert again.generated_notes == 0 and model.anchor_count() == 2
    preview = model.preview((0.3, -0.2), [55, 60], 100)
    half = min(preview.shape[1], exact.shape[1]) // 4
    np.testing.assert_allclose(preview[:, :half], exact[:, :half], atol=5e-3)  # frames were stored as float16
