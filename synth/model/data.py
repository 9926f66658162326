"""Reading the embedding cache into the tensors the model trainers need.

Written against ``synth.codec.cache.EmbeddingCache`` (docs/INTERFACES.md): ``.embeddings`` float16 memmap [N,T,D],
``.meta`` dicts (note_str, instrument_str, family, pitch), ``.mean``/``.std``. Class indices come from sorted names
(families from ``synth.data.families.FAMILIES``, instruments sorted by name over the TRAIN split) so runs are
deterministic and independent of the order notes were encoded in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# NSynth's families, sorted; used when synth.data is not importable (the class index = the position).
_NSYNTH_FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
)


def families() -> tuple[str, ...]:
    try:
        from synth.data.families import FAMILIES

        return tuple(FAMILIES)
    except Exception:
        return _NSYNTH_FAMILIES


def family_index(value: object, fams: tuple[str, ...]) -> int:
    """A family given as a name or an index -> class index."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    name = str(value)
    if name in fams:
        return fams.index(name)
    if name.isdigit():
        return int(name)
    raise ValueError(f"unknown family {name!r} (known: {', '.join(fams)})")


def open_cache(emb_dir: str | Path, split: str):
    from synth.codec.cache import EmbeddingCache

    return EmbeddingCache(emb_dir, split)


def train_instruments(emb_dir: str | Path) -> list[str]:
    """Sorted names of the training instruments: the instrument classifier's classes."""
    return sorted({m["instrument_str"] for m in open_cache(emb_dir, "train").meta})


@dataclass
class NoteSet:
    """One split in memory. ``x`` is standardized, float16; its layout depends on who asked (see loaders)."""

    x: torch.Tensor
    pitch: torch.Tensor  # long [N], MIDI
    velocity: torch.Tensor  # long [N], MIDI velocity (100 in caches written before velocity layers)
    family: torch.Tensor  # long [N]
    instrument: torch.Tensor  # long [N], index into the train instrument list, -1 if not a train instrument
    instrument_names: list[str]  # per note
    note_strs: list[str]
    family_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.note_strs)

    def subset(self, idx: list[int]) -> "NoteSet":
        """The notes at positions ``idx``, in that order."""
        return NoteSet(
            x=self.x[idx], pitch=self.pitch[idx], velocity=self.velocity[idx], family=self.family[idx], instrument=self.instrument[idx],
            instrument_names=[self.instrument_names[i] for i in idx], note_strs=[self.note_strs[i] for i in idx],
            family_names=self.family_names,
        )


def _labels(meta: list[dict], classes: list[str], fams: tuple[str, ...]):
    cls_index = {n: i for i, n in enumerate(classes)}
    pitch = torch.tensor([int(m["pitch"]) for m in meta], dtype=torch.long)
    family = torch.tensor([family_index(m["family"], fams) for m in meta], dtype=torch.long)
    inst = torch.tensor([cls_index.get(m["instrument_str"], -1) for m in meta], dtype=torch.long)
    return pitch, family, inst


def _select(meta: list[dict], pitch_range: tuple[int, int] | None) -> np.ndarray:
    if pitch_range is None:
        return np.arange(len(meta))
    lo, hi = pitch_range
    return np.array([i for i, m in enumerate(meta) if lo <= int(m["pitch"]) <= hi], dtype=np.int64)


def load_notes(
    emb_dir: str | Path,
    split: str,
    classes: list[str],
    num_frames: int,
    time_pool: int = 1,
    pitch_range: tuple[int, int] | None = None,
    chunk: int = 256,
    limit: int | None = None,
) -> NoteSet:
    """Standardized notes of one split. ``time_pool == 1``: ``x`` is ``[N, T, D]`` (generator layout);
    ``time_pool > 1``: ``x`` is ``[N, D, ceil(T/time_pool)]``, average-pooled once here (the VAE's prepared input),
    which is 4x less memory and compute than pooling every batch."""
    cache = open_cache(emb_dir, split)
    fams = families()
    idx = _select(cache.meta, pitch_range)
    if limit is not None:
        idx = idx[:limit]
    meta = [cache.meta[i] for i in idx]
    parts = []
    for s in range(0, len(idx), chunk):
        sel = idx[s : s + chunk]
        x = torch.from_numpy(_std_rows(cache, sel))
        t = x.shape[1]
        x = x[:, :num_frames] if t >= num_frames else F.pad(x, (0, 0, 0, num_frames - t))
        if time_pool > 1:
            x = F.avg_pool1d(x.transpose(1, 2), time_pool, ceil_mode=True)
        parts.append(x.half())
    x_all = torch.cat(parts) if parts else torch.zeros(0)
    pitch, family, inst = _labels(meta, classes, fams)
    return NoteSet(
        x=x_all,
        pitch=pitch,
        velocity=torch.tensor([int(m.get("velocity", 100)) for m in meta], dtype=torch.long),
        family=family,
        instrument=inst,
        instrument_names=[m["instrument_str"] for m in meta],
        note_strs=[m["note_str"] for m in meta],
        family_names=fams,
    )


def _std_rows(cache, sel: np.ndarray) -> np.ndarray:
    """Rows ``sel`` standardized with the train statistics (same arithmetic as ``cache.standardized``)."""
    raw = np.asarray(cache.embeddings[sel], dtype=np.float32)
    return (raw - np.asarray(cache.mean, np.float32)) / np.asarray(cache.std, np.float32)


def cache_shape(emb_dir: str | Path, split: str = "train") -> tuple[int, int, int]:
    return tuple(open_cache(emb_dir, split).embeddings.shape)  # type: ignore[return-value]


def cache_stats(emb_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    c = open_cache(emb_dir, "train")
    return np.asarray(c.mean, np.float32), np.asarray(c.std, np.float32)


def instrument_batches(
    instrument_names: list[str], batch_size: int, rng: np.random.Generator, group: int = 8
) -> list[np.ndarray]:
    """Batches made of groups of ``group`` notes of one instrument (each instrument's notes shuffled and cut into
    groups; groups shuffled), covering every note once per epoch. Every batch then holds many same-instrument pairs
    for the neighbour loss's attraction AND about batch/group different instruments for its repulsion (random
    batches hold few same-instrument pairs; whole-instrument batches hold few instruments)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(instrument_names):
        groups.setdefault(name, []).append(i)
    chunks: list[np.ndarray] = []
    for name in sorted(groups):
        idx = rng.permutation(np.asarray(groups[name]))
        g = max(1, group)
        chunks.extend(idx[s : s + g] for s in range(0, len(idx), g))
    order = rng.permutation(len(chunks))
    batches, cur = [], []
    for j in order:
        cur.extend(chunks[j].tolist())
        if len(cur) >= batch_size:
            batches.append(np.array(cur[:batch_size]))
            cur = cur[batch_size:]
    if len(cur) > 1:
        batches.append(np.array(cur))
    return batches


def synthetic_notes(
    num_instruments: int = 12,
    pitches: tuple[int, int] = (48, 72),
    num_frames: int = 32,
    dim: int = 16,
    time_pool: int = 1,
    seed: int = 0,
) -> NoteSet:
    """A tiny structured stand-in for a split (tests, tiny bundles): each instrument has a random spectral
    signature and decay, each pitch a sinusoidal pattern over the dims, plus noise. Instruments are named
    ``synth_<family>_<i>``; families cycle through the taxonomy."""
    g = torch.Generator().manual_seed(seed)
    fams = families()
    lo, hi = pitches
    names, fam, pit, xs = [], [], [], []
    t = torch.arange(num_frames).float()[:, None]
    dims = torch.arange(dim).float()[None, :]
    for i in range(num_instruments):
        sig = torch.randn(dim, generator=g)
        decay = 0.02 + 0.1 * torch.rand(1, generator=g)
        for p in range(lo, hi + 1):
            pat = torch.sin(dims * (p - lo + 1) * 0.13)
            x = (sig + pat) * torch.exp(-decay * t) + 0.1 * torch.randn(num_frames, dim, generator=g)
            xs.append(x)
            names.append(f"synth_{fams[i % len(fams)]}_{i:03d}")
            fam.append(i % len(fams))
            pit.append(p)
    x = torch.stack(xs)
    if time_pool > 1:
        x = F.avg_pool1d(x.transpose(1, 2), time_pool, ceil_mode=True)
    classes = sorted(set(names))
    return NoteSet(
        x=x.half(),
        pitch=torch.tensor(pit),
        velocity=torch.full((len(pit),), 100, dtype=torch.long),
        family=torch.tensor(fam),
        instrument=torch.tensor([classes.index(n) for n in names]),
        instrument_names=names,
        note_strs=[f"{n}-{p:03d}-100" for n, p in zip(names, pit)],
        family_names=fams,
    )
