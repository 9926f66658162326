"""How well do simple per-instrument features find a held-out instrument's family (issue 18's kNN target)?

The VAE's map reaches k=1 family accuracy 0.37 on held-out instruments (``synth eval latent``). This asks what the
map's inputs allow: one feature vector per instrument from (a) the codec embedding the VAE encodes (mean and std
over the held part of each frame dimension except the pitch channel, averaged over the instrument's notes) and (b)
the real audio (mean and std of 20 MFCCs over the note's first 3 s); both z-scored with the training instruments'
statistics; then k=1 and k=5 nearest training instruments (Euclidean) vote for each held-out instrument's family.
Notes used: velocity 100 at MIDI 48, 55, 60, 67 and 72 (every instrument has its core there).

    python scripts/family_knn_ceiling.py --emb data/emb/default --data data/notes --split test

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

PITCHES = (48, 55, 60, 67, 72)
HELD_FRAMES = 225  # 3 s at 75 frames/s: the held part


def knn_family(train: np.ndarray, train_fam: np.ndarray, test: np.ndarray, test_fam: np.ndarray) -> dict:
    mu, sd = train.mean(0), train.std(0) + 1e-6
    a, b = (train - mu) / sd, (test - mu) / sd
    order = np.argsort(((b[:, None, :] - a[None, :, :]) ** 2).sum(-1), axis=1)
    k1 = float(np.mean(train_fam[order[:, 0]] == test_fam))
    k5 = float(np.mean([Counter(train_fam[order[i, :5]]).most_common(1)[0][0] == test_fam[i]
                        for i in range(len(test_fam))]))
    return {"k1": round(k1, 3), "k5": round(k5, 3), "train_instruments": len(train), "test_instruments": len(test)}


def embedding_features(emb: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    meta = json.loads((emb / f"{split}.json").read_text())["meta"]
    x = np.load(emb / f"{split}.npy", mmap_mode="r")
    rows = defaultdict(list)
    for i, m in enumerate(meta):
        if m["pitch"] in PITCHES and m.get("velocity", 100) == 100:
            rows[m["instrument_str"]].append(i)
    feats, fams = [], []
    for name in sorted(rows):
        idx = np.asarray(rows[name])
        held = np.asarray(x[idx][:, :HELD_FRAMES, 1:], np.float32)  # dim 0 is the pitch channel
        feats.append(np.concatenate([held.mean(1), held.std(1)], 1).mean(0))
        fams.append(meta[idx[0]]["family"])
    return np.asarray(feats), np.asarray(fams)


def mfcc_features(data: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    import librosa
    import soundfile as sf

    examples = json.loads((data / f"nsynth-{split}" / "examples.json").read_text())
    notes = defaultdict(list)
    for key, e in examples.items():
        if e["velocity"] == 100 and e["pitch"] in PITCHES:
            notes[e["instrument_str"]].append((key, e["instrument_family_str"]))
    feats, fams = [], []
    for name in sorted(notes):
        per_note = []
        for key, _ in notes[name]:
            y, sr = sf.read(data / f"nsynth-{split}" / "audio" / f"{key}.wav", dtype="float32")
            m = librosa.feature.mfcc(y=y[: 3 * sr], sr=sr, n_mfcc=20)
            per_note.append(np.concatenate([m.mean(1), m.std(1)]))
        feats.append(np.mean(per_note, 0))
        fams.append(notes[name][0][1])
    return np.asarray(feats), np.asarray(fams)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emb", default="data/emb/default")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    out = {"notes": f"velocity 100 at MIDI {', '.join(map(str, PITCHES))}"}
    for name, fn, root in (("codec_embedding_stats", embedding_features, Path(args.emb)),
                           ("real_audio_mfcc_stats", mfcc_features, Path(args.data))):
        train, train_fam = fn(root, "train")
        test, test_fam = fn(root, args.split)
        out[name] = knn_family(train, train_fam, test, test_fam)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
