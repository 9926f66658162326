"""Write a tiny embedding cache in synth.codec.cache's on-disk layout from synthetic notes (no codec needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synth.model.data import synthetic_notes


def write_fake_cache(out: Path, num_frames: int = 24, dim: int = 8, instruments=(8, 3, 3), pitches=(48, 72),
                     velocities: tuple[int, ...] | None = None) -> Path:
    """``velocities`` None: one layer and no velocity in the meta (a cache written before velocity layers);
    a tuple: every note at each velocity (``synthetic_notes``' brightness tilt), velocity in the meta."""
    out.mkdir(parents=True, exist_ok=True)
    for split, n, seed in zip(("train", "valid", "test"), instruments, (0, 1, 2)):
        notes = synthetic_notes(n, pitches=pitches, num_frames=num_frames, dim=dim, seed=seed,
                                velocities=velocities or (100,))
        raw = notes.x.float().numpy() * 0.5 + 0.1  # "raw" = destandardized with std 0.5, mean 0.1
        names = [f"{split}_{name}" for name in notes.instrument_names]
        meta = [{"note_str": f"{nm}-{int(p):03d}-{int(v):03d}", "instrument_str": nm,
                 "family": notes.family_names[int(f)], "pitch": int(p)}
                for nm, p, v, f in zip(names, notes.pitch, notes.velocity, notes.family)]
        if velocities is not None:
            for m, v in zip(meta, notes.velocity):
                m["velocity"] = int(v)
        np.save(out / f"{split}.npy", raw.astype(np.float16))
        info = {"codec": {"name": "fake"}, "split": split, "shape": list(raw.shape), "rows_done": len(raw),
                "complete": True, "meta": meta}
        (out / f"{split}.json").write_text(json.dumps(info))
    np.savez(out / "stats.npz", mean=np.full(dim, 0.1, np.float32), std=np.full(dim, 0.5, np.float32))
    return out
