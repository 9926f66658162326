"""Generated notes of a bundle beside the real notes of held-out instruments: WAVs and spectrogram PNGs
(real | codec round trip | each network the bundle can play), the listening proxies kept beside the model card.

    python scripts/generate_compare.py --bundle models/default --data data/notes --split test --count 8 \
        --out models/default/examples/compare

One note per family (the held-out note nearest MIDI 60 at velocity 100, as scripts/codec_compare.py picks), played at
the instrument's own point from bundle.json with the pitch and velocity of the real note. Whole 4 s notes (the
release after the note-off at 3 s is compared too), 16-bit WAV.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codec_compare import pick, spectrogram_png  # noqa: E402  (the same choice of notes and the same pictures)


def main() -> int:
    from synth.codec.notes import load_note_audio, read_notes
    from synth.engine.bundle_source import open_bundle
    from synth.eval import generate as G

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="models/default")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    synth = open_bundle(args.bundle, device="cpu", disk_cache=False, separate_process=False,
                        spare_core=False).synthesizer
    points = {i.name: (i.x, i.y) for i in synth.bundle.instruments}
    notes = [n for n in pick([n for n in read_notes(args.data, args.split) if n.instrument_str in points],
                             args.count)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sr, n = synth.sample_rate, synth.num_samples
    listing = []
    for k, note in enumerate(notes):
        real = load_note_audio(note, sr, n)
        waves = {"real": real}
        with torch.inference_mode():
            codec = synth.codec
            waves["codec"] = synth.safe_audio(codec.decode(codec.encode(torch.from_numpy(real)[None])))[0, :n]
        z = torch.tensor([points[note.instrument_str]], dtype=torch.float32)
        p, v = torch.tensor([note.pitch]), torch.tensor([note.velocity])
        for kind in G.models_of(synth):
            waves[kind] = G.played(synth, G.model_frames(synth, kind, z, p, v), p)[0].numpy()
        stem = f"{k:02d}_{note.note_str}"
        for name, wave in waves.items():
            sf.write(out / f"{stem}_{name}.wav", np.clip(wave, -1, 1), sr, subtype="PCM_16")
        spectrogram_png(waves, sr, f"{note.note_str} ({note.family}) at its map point; dashed: note-off",
                        out / f"{stem}.png")
        listing.append({"note": note.note_str, "family": note.family, "point": points[note.instrument_str],
                        "files": sorted(f"{stem}_{name}.wav" for name in waves), "png": f"{stem}.png"})
    (out / "examples.json").write_text(json.dumps({"bundle": args.bundle, "hash": synth.bundle.hash,
                                                   "play_path": synth.play_path, "examples": listing}, indent=1) + "\n")
    print(json.dumps({"examples": len(listing), "out": str(out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
