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


def write_fake_audio(root: Path, emb: Path, splits=("train", "test"), sample_rate: int = 24000,
                     seconds: float = 2.0, note_off_s: float = 1.5, keep=None) -> Path:
    """Real-audio stand-ins in the NSynth layout (``nsynth-<split>/examples.json`` + ``audio/<note_str>.wav``) for
    the notes of the fake cache ``emb`` (those for which ``keep(split, meta)`` is true, default all): a harmonic
    tone at the note's pitch whose spectral tilt depends on the instrument and gets brighter with velocity, louder
    with velocity, released at ``note_off_s``."""
    import soundfile as sf

    t = np.arange(int(sample_rate * seconds)) / sample_rate
    env = np.minimum(t / 0.01, 1.0) * np.where(t < note_off_s, 1.0, np.exp(-(t - note_off_s) / 0.05))
    for split in splits:
        meta = [m for m in json.loads((emb / f"{split}.json").read_text())["meta"] if keep is None or keep(split, m)]
        folder = root / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True, exist_ok=True)
        examples = {}
        for m in meta:
            v = int(m.get("velocity", 100))
            f0 = 440.0 * 2 ** ((int(m["pitch"]) - 69) / 12)
            tilt = 2.5 - 0.25 * (sum(map(ord, m["instrument_str"])) % 7) - 1.5 * (v - 40) / 87
            w = sum(k ** -tilt * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 12) if k * f0 < 10000)
            w = 0.3 * (v / 127) * w / np.abs(w).max() * env
            sf.write(folder / "audio" / f"{m['note_str']}.wav", w.astype(np.float32), sample_rate)
            examples[m["note_str"]] = {"note_str": m["note_str"], "instrument_str": m["instrument_str"],
                                       "instrument_family_str": m["family"], "pitch": int(m["pitch"]),
                                       "velocity": v, "sample_rate": sample_rate}
        (folder / "examples.json").write_text(json.dumps(examples))
    return root
