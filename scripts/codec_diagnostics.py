"""Two diagnostics of a harmonic codec on held-out notes, printed as JSON (CODEC_CARD.md, session 14).

    python scripts/codec_diagnostics.py hf-parts --codec models/default/codec --max-notes 100
    python scripts/codec_diagnostics.py noise-floor --codec models/default/codec --max-notes 200

``hf-parts``: where the round trip's power above 6 kHz comes from. Over the held part (0.3-2.8 s), the share of a
note's power above 6 kHz (dB, p50 and p90 over notes) for the real notes and the round trips, the round trip's split
into the harmonic and the noise branch, and the p50 per pitch range (a harmonic bank with a 1/k^p prior starts a low
note's partials near 6 kHz, k ~ 100, far under its fundamental).

``noise-floor``: MR-STFT (the eval's metric) between two decodes of the same embeddings whose noise buffers have
different seeds: what a change of noise realisation alone costs, same spectra otherwise.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

PITCH_RANGES = ((21, 48), (48, 60), (60, 72), (72, 109))


def _notes_audio(codec, data: str, split: str, max_notes: int) -> tuple[list, torch.Tensor]:
    from synth.codec.notes import load_note_audio, read_notes
    from synth.eval.codec import pick_notes

    notes = pick_notes(read_notes(data, split), max_notes)
    n = 4 * codec.sample_rate
    return notes, torch.from_numpy(np.stack([load_note_audio(x, codec.sample_rate, n) for x in notes]))


def _hf_power(wave: torch.Tensor, sr: int, cut_hz: float = 6000.0) -> tuple[np.ndarray, np.ndarray]:
    """(power above ``cut_hz``, total power) per note over the held part, Hann-windowed."""
    x = wave[:, int(0.3 * sr):int(2.8 * sr)].numpy().astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), axis=1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1 / sr)
    return power[:, freqs >= cut_hz].sum(1), power.sum(1)


def _db(x: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.maximum(x, 1e-30))


def hf_parts(codec, notes: list, audio: torch.Tensor, batch: int = 10) -> dict:
    from synth.codec.harmonic import midi_to_hz

    dec, sr, n = codec.model.decoder, codec.sample_rate, audio.shape[1]
    harm_parts, noise_parts = [], []
    with torch.inference_mode():
        for i in range(0, len(notes), batch):
            ctrl = dec.controls(codec.encode(audio[i:i + batch]))
            harmonic, noise, env = dec.synthesis_parts(ctrl, midi_to_hz(ctrl["f0_midi"]))
            env = 1.0 if env is None else env
            harm_parts.append((harmonic * env)[:, :n])
            noise_parts.append((noise * env)[:, :n])
    real_hf, real_all = _hf_power(audio, sr)
    harm_hf, harm_all = _hf_power(torch.cat(harm_parts), sr)
    noise_hf, noise_all = _hf_power(torch.cat(noise_parts), sr)
    real_db = _db(real_hf / real_all)
    trip_db = _db((harm_hf + noise_hf) / (harm_all + noise_all))
    pitches = np.array([int(x.pitch) for x in notes])
    ranges = {}
    for lo, hi in PITCH_RANGES:
        sel = (pitches >= lo) & (pitches < hi)
        if sel.any():
            ranges[f"{lo}-{hi - 1}"] = {"notes": int(sel.sum()), "real_p50_db": round(float(np.median(real_db[sel])), 1),
                                        "roundtrip_p50_db": round(float(np.median(trip_db[sel])), 1)}
    return {"notes": len(notes),
            "hf_share_db": {"real_p50": round(float(np.percentile(real_db, 50)), 1),
                            "real_p90": round(float(np.percentile(real_db, 90)), 1),
                            "roundtrip_p50": round(float(np.percentile(trip_db, 50)), 1),
                            "roundtrip_p90": round(float(np.percentile(trip_db, 90)), 1)},
            "roundtrip_hf_from_noise_branch_p50": round(float(np.median(noise_hf / np.maximum(harm_hf + noise_hf,
                                                                                              1e-30))), 2),
            "by_pitch": ranges}


def noise_floor(codec, audio: torch.Tensor, batch: int = 25) -> dict:
    from synth.codec.harmonic import FilteredNoise
    from synth.eval import audio_metrics as am

    dec, n, seed0 = codec.model.decoder, audio.shape[1], int(codec.config.noise_seed)
    original = dec.noise
    decodes = {}
    try:
        for seed in (seed0, seed0 + 1):
            dec.noise = FilteredNoise(dec.hop, dec.n_noise_bands, seed=seed)
            decodes[seed] = torch.cat([codec.decode(codec.encode(audio[i:i + batch]))[:, :n]
                                       for i in range(0, len(audio), batch)])
    finally:
        dec.noise = original
    a, b = decodes.values()
    dist = lambda x, y: float(np.mean([am.mrstft_distance(x[i:i + batch], y[i:i + batch])
                                       for i in range(0, len(x), batch)]))
    return {"notes": len(audio), "mrstft_real_vs_roundtrip": round(dist(a, audio), 4),
            "mrstft_two_noise_seeds": round(dist(a, b), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("hf-parts", "noise-floor"))
    ap.add_argument("--codec", default="models/default/codec", help="a harmonic codec folder")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-notes", type=int, default=100, help="evenly spread notes of the split (as codec eval)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from synth.codec import load_codec

    torch.set_num_threads(args.threads)
    codec = load_codec(args.codec)
    if getattr(codec.config, "arch", None) != "harmonic":
        ap.error(f"{args.codec} is not a harmonic codec (these diagnostics read its synthesis controls)")
    notes, audio = _notes_audio(codec, args.data, args.split, args.max_notes)
    result = hf_parts(codec, notes, audio) if args.what == "hf-parts" else noise_floor(codec, audio)
    print(json.dumps({"what": args.what, "codec": args.codec, "split": args.split, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
