"""Which cache a bundle is evaluated on (synth.eval.bundle_cache): the one it was built from by default, and a
warning when a cache's statistics are not the bundle's (another codec's embedding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.eval.bundle_cache import FALLBACK, resolve_emb, stats_mismatch
from synth.model.bundle import build_tiny_bundle, load_bundle, read_bundle_info, save_bundle
from synth.model.data import cache_stats, open_cache
from tests.model.fakecache import write_fake_cache


def _bundle_built_from(emb: Path, out: Path, data: dict) -> Path:
    """A tiny bundle whose stats.pt and bundle.json say it was built from ``emb`` (as `synth bundle build` does)."""
    src = build_tiny_bundle(out.with_name(out.name + "_src"), seed=0)
    b = load_bundle(src, device="cpu")
    save_bundle(out, src / "codec", b.vae, b.generator, cache_stats(emb), b.instruments, data)
    return out


def test_the_default_is_the_cache_the_bundle_was_built_from(tmp_path):
    emb = write_fake_cache(tmp_path / "emb")
    built = _bundle_built_from(emb, tmp_path / "built", {"emb": str(emb)})
    assert resolve_emb(read_bundle_info(built), None) == str(emb)
    assert resolve_emb(read_bundle_info(built), "some/other/cache") == "some/other/cache"  # typed wins
    gone = _bundle_built_from(emb, tmp_path / "gone", {"emb": str(tmp_path / "deleted")})
    assert resolve_emb(read_bundle_info(gone), None) == FALLBACK  # the recorded folder is not here: the old default
    bare = build_tiny_bundle(tmp_path / "bare", seed=0)  # no data.emb at all
    assert resolve_emb(read_bundle_info(bare), None) == FALLBACK


def test_a_cache_with_other_statistics_is_named_in_a_warning(tmp_path):
    emb = write_fake_cache(tmp_path / "emb")
    other = write_fake_cache(tmp_path / "other")  # the same notes, as another encoder would write them:
    np.savez(other / "stats.npz", mean=np.full(8, 0.3, np.float32), std=np.full(8, 0.7, np.float32))
    built = load_bundle(_bundle_built_from(emb, tmp_path / "built", {"emb": str(emb)}), device="cpu")
    assert stats_mismatch(built, open_cache(emb, "train")) is None
    warning = stats_mismatch(built, open_cache(other, "test"))
    assert warning is not None and str(other) in warning and str(emb) in warning
