"""Round trips of the same held-out notes through several codecs, side by side: WAVs and spectrogram PNGs
(real | codec A | codec B ...), the listening proxies kept beside the codec card.

    python scripts/codec_compare.py --codec v5a=runs/codec/v5a_shipped --codec v6=runs/codec/v6/codec \
        --data data/notes --split test --count 8 --out models/default/codec/examples

Whole 4 s notes are kept (the release after the note-off at 3 s is half of what is compared). Notes are chosen
spread over the split's instruments and families (sorted by name, evenly spaced), the same for every codec.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def pick(notes: list, count: int) -> list:
    """One note per family first (nearest MIDI 60 at velocity 100), then evenly spaced notes, ``count`` in all."""
    by_family: dict[str, list] = {}
    for n in notes:
        by_family.setdefault(n.family, []).append(n)
    chosen = [min(group, key=lambda n: (abs(n.pitch - 60) + abs(n.velocity - 100), n.note_str))
              for _, group in sorted(by_family.items())]
    return chosen[:count]


def spectrogram_png(waves: dict[str, np.ndarray], sample_rate: int, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(waves), figsize=(4 * len(waves), 3.2), sharey=True)
    for ax, (name, wave) in zip(np.atleast_1d(axes), waves.items()):
        ax.specgram(wave + 1e-9, NFFT=1024, Fs=sample_rate, noverlap=768, vmin=-130, vmax=-20, cmap="magma")
        ax.set_title(name)
        ax.set_xlabel("s")
        ax.axvline(3.0, color="w", lw=0.6, ls="--")
    np.atleast_1d(axes)[0].set_ylabel("Hz")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> int:
    from synth.codec import load_codec
    from synth.codec.notes import load_note_audio, read_notes

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codec", action="append", required=True, help="name=folder, repeatable")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    codecs = {spec.split("=", 1)[0]: load_codec(spec.split("=", 1)[1]) for spec in args.codec}
    sr = next(iter(codecs.values())).sample_rate
    notes = pick(read_notes(args.data, args.split), args.count)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = int(args.seconds * sr)
    listing = []
    for k, note in enumerate(notes):
        real = load_note_audio(note, sr, n)
        waves = {"real": real}
        with torch.inference_mode():
            for name, codec in codecs.items():
                waves[name] = codec.decode(codec.encode(torch.from_numpy(real)[None]))[0, :n].numpy()
        stem = f"{k:02d}_{note.note_str}"
        for name, wave in waves.items():
            sf.write(out / f"{stem}_{name}.wav", np.clip(wave, -1, 1), sr, subtype="PCM_16")
        spectrogram_png(waves, sr, f"{note.note_str} ({note.family}); dashed: note-off",
                        out / f"{stem}.png")
        listing.append({"note": note.note_str, "family": note.family, "files": sorted(
            f"{stem}_{name}.wav" for name in waves), "png": f"{stem}.png"})
    (out / "examples.json").write_text(json.dumps(listing, indent=1) + "\n")
    print(json.dumps({"examples": len(listing), "out": str(out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
