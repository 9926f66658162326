"""Which embedding cache a bundle is evaluated on.

Why: the cache must hold the embedding of the bundle's codec encoder. Until session 16 every bundle was built from
``data/emb/default``, the evaluations' default; the shipped bundle is now built from the v7 cache (``data/emb/v7``,
recorded in ``bundle.json``'s ``data.emb``), and evaluating it on another codec's cache runs without an error and
measures nonsense (the real codes, the map points and the nearest-neighbour baseline all come from the cache).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


FALLBACK = "data/emb/default"


def resolve_emb(info: dict, emb: str | None) -> str:
    """``emb`` when given; else the cache the bundle was built from (``info``: its loaded ``bundle.json``, whose
    ``data.emb`` the build wrote), when that folder exists (relative paths are read from the current folder, as the
    build wrote them); else ``data/emb/default``."""
    if emb:
        return emb
    built_from = info.get("data", {}).get("emb")
    if isinstance(built_from, str) and (Path(built_from) / "train.json").is_file():
        return built_from
    return FALLBACK


def stats_mismatch(bundle, cache) -> str | None:
    """A warning when an opened cache's (``synth.codec.cache.EmbeddingCache``, any split) training statistics are not
    the ones stored in the bundle (another encoder's embedding, or another build of it), else None."""
    mean, std = cache.mean, cache.std
    if mean.shape == bundle.mean.shape and np.allclose(mean, bundle.mean, rtol=1e-4, atol=1e-6) and np.allclose(
        std, bundle.std, rtol=1e-4, atol=1e-6
    ):
        return None
    built_from = bundle.info.get("data", {}).get("emb", "?")
    return (f"{cache.dir}: its training statistics are not the bundle's ({bundle.path}, built from {built_from}); the "
            "cache may hold another codec's embedding, so the real codes, map points and baselines measured from "
            "it would not match what the bundle plays")
