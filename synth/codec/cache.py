"""The embedding cache: every note of a dataset encoded once, as fp16 memory-mapped arrays the VAE and generator
train from without touching audio or the codec.

Layout of ``<dir>``: per split ``<split>.npy`` (float16 ``[N, T, D]``, raw, not standardized), ``<split>.json``
(codec description, shape, ``rows_done``, ``complete``, and ``meta``: one dict per row with note_str, instrument_str,
family, pitch), and ``stats.npz`` (float32 per-dimension ``mean``/``std`` of the train split).

Why resumable by rows: encoding thousands of notes takes minutes on this CPU; ``rows_done`` is written after each
flushed batch, so an interrupted run continues where it stopped and a finished split is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from synth.atomic import UMASK, atomic_write, clean_stale, write_text
from synth.codec.base import Codec
from synth.codec.notes import load_note_audio, note_meta, read_notes

SPLITS = ("train", "valid", "test")


class EmbeddingCache:
    """One split of a built cache: ``.embeddings`` (fp16 memmap), ``.meta``, ``.mean``/``.std`` (train stats)."""

    def __init__(self, directory: str | Path, split: str):
        self.dir = Path(directory)
        self.split = split
        info_path = self.dir / f"{split}.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"no embedding cache for split {split!r} in {self.dir} "
                                    f"(build it: python -m synth codec encode --out {self.dir})")
        self.info = json.loads(info_path.read_text())
        if not self.info.get("complete"):
            raise RuntimeError(f"embedding cache {info_path} is incomplete ({self.info.get('rows_done')} of "
                               f"{self.info['shape'][0]} rows): re-run python -m synth codec encode to finish it")
        self.meta: list[dict] = self.info["meta"]
        self.embeddings = np.load(self.dir / f"{split}.npy", mmap_mode="r")
        stats = np.load(self.dir / "stats.npz")
        self.mean = stats["mean"].astype(np.float32)
        self.std = stats["std"].astype(np.float32)

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def codec(self) -> dict:
        return self.info["codec"]

    def standardized(self, index) -> np.ndarray:
        """Rows (index, slice or array of indices) as float32, standardized per dimension with train statistics."""
        return (np.asarray(self.embeddings[index], dtype=np.float32) - self.mean) / self.std

    def destandardize(self, x):
        """Inverse of ``standardized`` (numpy or torch)."""
        if isinstance(x, torch.Tensor):
            return x * torch.as_tensor(self.std, device=x.device) + torch.as_tensor(self.mean, device=x.device)
        return np.asarray(x) * self.std + self.mean


def _write_info(path: Path, info: dict) -> None:
    write_text(path, json.dumps(info), fsync=False, file_mode=UMASK)  # progress, rewritten per chunk: no fsync


def encode_split(codec: Codec, data: str | Path, split: str, out: str | Path, seconds: float = 4.0,
                 batch_size: int = 16, progress: bool = True, limit: int | None = None,
                 shard: tuple[int, int] | None = None) -> dict:
    """Encode one split into ``out`` (resuming a partial run); returns its info dict.

    ``shard=(i, n)`` encodes only the i-th of n contiguous row ranges, so n processes can share a split (one thread
    each is faster than one process with n threads on this shared CPU). Shard 0 creates the array; the others wait
    for it. Each shard keeps its own ``<split>.shard-<i>of<n>.json`` progress; the last one to finish marks the split
    complete.
    """
    import time

    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out)  # temp files of an encode that was killed (never those of a shard still running)
    notes = read_notes(data, split)
    if limit is not None:
        notes = notes[:limit]
    num_samples = int(round(seconds * codec.sample_rate))
    frames = codec.num_frames(num_samples)
    shape = (len(notes), frames, codec.dim)
    info_path, arr_path = out / f"{split}.json", out / f"{split}.npy"
    meta = [note_meta(n) for n in notes]

    def matches(info: dict | None) -> bool:
        return (info is not None and info.get("shape") == list(shape) and info.get("codec") == codec.describe()
                and [m["note_str"] for m in info.get("meta", [])] == [m["note_str"] for m in meta]
                and arr_path.is_file())

    info = json.loads(info_path.read_text()) if info_path.is_file() else None
    if matches(info) and info.get("complete"):
        return info
    creator = shard is None or shard[0] == 0
    if not matches(info):
        if creator:
            info = {"codec": codec.describe(), "split": split, "shape": list(shape), "seconds": seconds,
                    "dtype": "float16", "rows_done": 0, "complete": False, "meta": meta}
            for old in out.glob(f"{split}.shard-*.json"):
                old.unlink()
            arr = np.lib.format.open_memmap(arr_path, mode="w+", dtype=np.float16, shape=shape)
            del arr
            _write_info(info_path, info)
        else:
            deadline = time.monotonic() + 600
            while not matches(info):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"shard {shard}: shard 0 never created {arr_path}")
                time.sleep(2)
                info = json.loads(info_path.read_text()) if info_path.is_file() else None
    arr = np.load(arr_path, mmap_mode="r+")
    if shard is None:
        lo, hi, prog_path = 0, len(notes), info_path
        start = int(info["rows_done"])
    else:
        i, n = shard
        lo, hi = i * len(notes) // n, (i + 1) * len(notes) // n
        prog_path = out / f"{split}.shard-{i}of{n}.json"
        start = json.loads(prog_path.read_text())["rows_done"] if prog_path.is_file() else lo
    bar = tqdm(total=hi - lo, initial=start - lo, desc=f"encode {split}" + (f" {shard[0]}/{shard[1]}" if shard else ""),
               unit="note", disable=not progress)
    for r in range(start, hi, batch_size):
        chunk = notes[r:min(r + batch_size, hi)]
        wave = torch.from_numpy(np.stack([load_note_audio(x, codec.sample_rate, num_samples) for x in chunk]))
        emb = codec.encode(wave).float().cpu().numpy()
        arr[r:r + len(chunk)] = emb[:, :frames].astype(np.float16)
        arr.flush()
        if shard is None:
            info["rows_done"] = r + len(chunk)
            _write_info(info_path, info)
        else:
            _write_info(prog_path, {"rows_done": r + len(chunk), "range": [lo, hi]})
        bar.update(len(chunk))
    bar.close()
    del arr
    if shard is not None:
        _write_info(prog_path, {"rows_done": hi, "range": [lo, hi], "complete": True})
        done = [json.loads(p.read_text()).get("complete") for p in out.glob(f"{split}.shard-*of{shard[1]}.json")]
        if len(done) < shard[1] or not all(done):
            return info  # another shard is still running; it will mark the split complete
        info["rows_done"] = len(notes)
    info["complete"] = True
    _write_info(info_path, info)
    return info


def train_stats(out: str | Path, split: str = "train", chunk: int = 256) -> dict:
    """Per-dimension mean/std over all frames of the train split (float64 accumulation), saved to stats.npz
    (written to a temporary name and renamed, so a reader never sees half a file)."""
    out = Path(out)
    arr = np.load(out / f"{split}.npy", mmap_mode="r")
    total = np.zeros(arr.shape[-1])
    total_sq = np.zeros(arr.shape[-1])
    count = 0
    for i in range(0, len(arr), chunk):
        x = np.asarray(arr[i:i + chunk], dtype=np.float64).reshape(-1, arr.shape[-1])
        total += x.sum(0)
        total_sq += np.square(x).sum(0)
        count += len(x)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
    std = np.maximum(std, 1e-5)
    with atomic_write(out / "stats.npz", fsync=False, file_mode=UMASK) as handle:
        np.savez(handle, mean=mean.astype(np.float32), std=std.astype(np.float32), frames=count)
    return {"frames": int(count), "mean_abs": float(np.abs(mean).mean()), "std_mean": float(std.mean())}


def build_cache(codec: Codec, data: str | Path, out: str | Path, splits=SPLITS, seconds: float = 4.0,
                batch_size: int = 16, progress: bool = True, limit: int | None = None,
                shard: tuple[int, int] | None = None) -> dict:
    """Encode every split present under ``data`` and write train statistics; returns a summary."""
    summary = {"codec": codec.describe(), "out": str(out), "splits": {}}
    for split in splits:
        if not (Path(data) / f"nsynth-{split}" / "examples.json").is_file():
            continue
        info = encode_split(codec, data, split, out, seconds, batch_size, progress, limit, shard)
        summary["splits"][split] = {"shape": info["shape"], "complete": info["complete"]}
    if summary["splits"].get("train", {}).get("complete"):
        summary["stats"] = train_stats(out)
    return summary
