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


def cache_coverage(emb_dir: str | Path, split: str = "train") -> dict:
    """What a split holds, from its meta: ``pitch_min``, ``pitch_max`` and the sorted distinct ``velocities``
    (100 for notes written before velocity layers). Lets a training command check its config against the data."""
    meta = open_cache(emb_dir, split).meta
    pitches = [int(m["pitch"]) for m in meta]
    return {
        "pitch_min": min(pitches) if pitches else None,
        "pitch_max": max(pitches) if pitches else None,
        "velocities": sorted({int(m.get("velocity", 100)) for m in meta}),
    }


def coverage_warnings(coverage: dict, pitch_min: int, pitch_max: int, velocity_cond: bool) -> list[str]:
    """Plain-language warnings when a model config would ignore part of the data (notes outside its pitch range
    are dropped by ``load_notes``; velocity layers without ``velocity_cond`` are all decoded as one)."""
    out = []
    lo, hi = coverage["pitch_min"], coverage["pitch_max"]
    if lo is not None and (lo < pitch_min or hi > pitch_max):
        out.append(f"the data spans MIDI {lo}-{hi} but the config {pitch_min}-{pitch_max}: notes outside are left "
                   f"out (train the whole range with --set pitch_min={lo} --set pitch_max={hi})")
    if len(coverage["velocities"]) > 1 and not velocity_cond:
        layers = ",".join(map(str, coverage["velocities"]))
        out.append(f"the data has velocity layers {layers} but velocity_cond is off: every layer is trained as one "
                   f"sound (condition on them with --set velocity_cond=true --set velocity_layers={layers})")
    return out


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
    velocities: tuple[int, ...] = (100,),
    brightness: float = 1.0,
) -> NoteSet:
    """A tiny structured stand-in for a split (tests, tiny bundles): each instrument has a random spectral
    signature and decay, each pitch a sinusoidal pattern over the dims, plus noise. Instruments are named
    ``synth_<family>_<i>``; families cycle through the taxonomy.

    ``velocities``: every (instrument, pitch) note at each of these velocities (default one layer, 100: the notes
    and random draws of the single-layer version, unchanged). A note at velocity v gets a "brightness" tilt over
    the dims, ``brightness * (v - 100) / 64 * ramp`` with ``ramp`` rising linearly from -1 (dim 0) to +1 (last
    dim), times the note's envelope: harder notes have more in the high dims, as real instruments get brighter;
    a model must read the velocity to rebuild it (the instrument's signature and the pitch do not say it)."""
    g = torch.Generator().manual_seed(seed)
    fams = families()
    lo, hi = pitches
    names, fam, pit, vel, xs = [], [], [], [], []
    t = torch.arange(num_frames).float()[:, None]
    dims = torch.arange(dim).float()[None, :]
    ramp = torch.linspace(-1.0, 1.0, dim)[None, :]
    for i in range(num_instruments):
        sig = torch.randn(dim, generator=g)
        decay = 0.02 + 0.1 * torch.rand(1, generator=g)
        env = torch.exp(-decay * t)
        for v in velocities:
            tilt = brightness * (int(v) - 100) / 64.0 * ramp
            for p in range(lo, hi + 1):
                pat = torch.sin(dims * (p - lo + 1) * 0.13)
                x = (sig + pat + tilt) * env + 0.1 * torch.randn(num_frames, dim, generator=g)
                xs.append(x)
                names.append(f"synth_{fams[i % len(fams)]}_{i:03d}")
                fam.append(i % len(fams))
                pit.append(p)
                vel.append(int(v))
    x = torch.stack(xs)
    if time_pool > 1:
        x = F.avg_pool1d(x.transpose(1, 2), time_pool, ceil_mode=True)
    classes = sorted(set(names))
    return NoteSet(
        x=x.half(),
        pitch=torch.tensor(pit),
        velocity=torch.tensor(vel, dtype=torch.long),
        family=torch.tensor(fam),
        instrument=torch.tensor([classes.index(n) for n in names]),
        instrument_names=names,
        note_strs=[f"{n}-{p:03d}-{v:03d}" for n, p, v in zip(names, pit, vel)],
        family_names=fams,
    )
