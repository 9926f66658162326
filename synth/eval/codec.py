"""Codec evaluation on held-out instruments: how much of the sound and the pitch survives a round trip, and what
a decode costs on this CPU.

Sound measures (``synth.eval.sound``, shared with the generator eval): release after the note-off, noise (spectral
flatness, energy above 6 kHz), attack per family, MFCC timbre distance/spread and a second pitch tracker (pYIN), each
for the real notes and their round trips (keys ``release``, ``noise``, ``attack_by_family``, ``timbre``,
``pitch_accuracy_pyin_raw``/``_encoded``).

Why these numbers: the codec is the ceiling of everything the instrument can sound like ("ground truth encoded"),
and the instrument re-decodes 25 four-second notes whenever the timbre point moves, so decode time of that batch is
a product requirement, not a curiosity.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from synth.codec.base import Codec
from synth.codec.notes import load_note_audio, read_notes
from synth.eval import audio_metrics as am
from synth.eval import sound as snd


def pick_notes(notes: list, max_notes: int | None) -> list:
    """A deterministic, evenly spread subset (notes are sorted by name, so this spans instruments and pitches)."""
    if not max_notes or max_notes >= len(notes):
        return notes
    idx = np.linspace(0, len(notes) - 1, max_notes).round().astype(int)
    return [notes[i] for i in idx]


def _load() -> float:
    """1-minute load average: decode times on a shared CPU mean little without it."""
    import os

    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def time_decode(codec: Codec, emb: torch.Tensor, repeats: int = 3) -> float:
    """Median wall seconds to decode ``emb`` (one batch) after a warm-up call (best of the thread counts tried is
    reported as ``decode_s_25_notes``: on this shared 2-core machine one thread was often faster than two)."""
    codec.decode(emb)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        codec.decode(emb)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@torch.no_grad()
def evaluate_codec(codec: Codec, data: str | Path, split: str = "test", max_notes: int | None = None,
                   seconds: float = 4.0, batch: int = 25, pitch_cfg: am.PitchConfig | None = None,
                   progress: bool = True, skip_pitch: bool = False,
                   timing_threads: tuple[int, ...] = (1, 2), note_off_s: float = 3.0, sound: bool = True,
                   pitch_trackers: tuple[str, ...] = ("crepe", "pyin")) -> tuple[dict, dict]:
    """Return (metrics JSON-able, arrays: 'audio', 'recon', 'notes') for the chosen notes of ``split``.

    ``skip_pitch`` turns off every pitch tracker; otherwise ``pitch_trackers`` names those to run (crepe, pyin).
    ``note_off_s`` is where the dataset's notes release the key (3.0 s of 4 s); ``sound`` adds the sound measures."""
    from tqdm import tqdm

    notes = pick_notes(read_notes(data, split), max_notes)
    if not notes:
        raise FileNotFoundError(f"no notes in split {split!r} of {data}")
    sr = codec.sample_rate
    n_samples = int(round(seconds * sr))
    audio = torch.from_numpy(np.stack([load_note_audio(n, sr, n_samples) for n in notes]))
    pitches = np.array([int(n.pitch) for n in notes])
    embs, recons = [], []
    enc_time = dec_time = 0.0
    for i in tqdm(range(0, len(notes), batch), desc=f"round trips ({split})", disable=not progress):
        x = audio[i:i + batch]
        t0 = time.perf_counter()
        e = codec.encode(x)
        t1 = time.perf_counter()
        y = codec.decode(e)[:, :n_samples]
        t2 = time.perf_counter()
        enc_time += t1 - t0
        dec_time += t2 - t1
        embs.append(e.cpu())
        recons.append(y.float().cpu())
    emb = torch.cat(embs)
    recon = torch.cat(recons)
    bench = emb[:batch]
    if len(bench) < batch:  # the benchmark is always 25 notes: repeat notes when the split is smaller
        bench = bench.repeat((batch + len(bench) - 1) // len(bench), 1, 1)[:batch]
    threads_before = torch.get_num_threads()
    decode_by_threads = {}
    for n_threads in timing_threads:
        torch.set_num_threads(n_threads)
        decode_by_threads[str(n_threads)] = round(time_decode(codec, bench), 3)
    torch.set_num_threads(threads_before)
    decode_batch_s = min(decode_by_threads.values()) if decode_by_threads else time_decode(codec, bench)
    mrstft = float(np.mean([am.mrstft_distance(recon[i:i + batch], audio[i:i + batch])
                            for i in range(0, len(notes), batch)]))
    mel = float(np.mean([am.log_mel_l1(recon[i:i + batch], audio[i:i + batch], sr)
                         for i in range(0, len(notes), batch)]))
    result = {
        "codec": codec.describe(), "split": split, "notes": len(notes),
        "instruments": len({n.instrument_str for n in notes}), "seconds": seconds,
        "threads": torch.get_num_threads(), "load_average_1min": round(_load(), 2),
        "mrstft": round(mrstft, 4), "log_mel_l1": round(mel, 4),
        "decode_s_25_notes": round(decode_batch_s, 3), "decode_s_25_notes_by_threads": decode_by_threads,
        "decode_s_per_note": round(decode_batch_s / batch, 4),
        "decode_realtime_factor": round(decode_batch_s / (batch * seconds), 5),
        "encode_s_per_note": round(enc_time / len(notes), 4), "roundtrip_decode_s_per_note": round(dec_time / len(notes), 4),
        "embedding_shape": list(emb.shape[1:]),
        "mrstft_by_family": _by_family(notes, recon, audio),
        "embedding_health": embedding_health(codec, emb[: min(len(emb), 25)]),
        "held_rms_ratio_db": _held_level(recon, audio, sr),
    }
    if hasattr(codec, "controls"):
        try:
            result.update(_harmonic_stats(codec, emb, pitches, audio, n_samples))
        except Exception as exc:  # the SEANet baseline has no controls
            if "controls" not in str(exc):
                raise
    if not skip_pitch and "crepe" in pitch_trackers:
        cfg = pitch_cfg or am.PitchConfig()
        t0 = time.perf_counter()
        raw = am.pitch_accuracy(audio, sr, pitches, cfg)
        enc = am.pitch_accuracy(recon, sr, pitches, cfg)
        cents = am.cents_off(enc["f0"], pitches)
        result.update({
            "pitch_accuracy_raw": round(raw["accuracy"], 4), "pitch_accuracy_encoded": round(enc["accuracy"], 4),
            "pitch_accuracy_encoded_where_raw_correct": round(float(enc["correct"][raw["correct"]].mean()), 4)
            if raw["correct"].any() else None,
            "median_abs_cents_encoded": am.nan_to_none(round(float(np.nanmedian(np.abs(cents))), 2))
            if np.isfinite(cents).any() else None,
            "pitch_tracker": {"model": cfg.model, "window_s": [cfg.start_s, cfg.end_s], "hop_s": cfg.hop_s,
                              "voiced_threshold": cfg.voiced_threshold, "tolerance_cents": cfg.tolerance_cents},
            "pitch_eval_s": round(time.perf_counter() - t0, 1),
            "pitch_failures": [
                {"note": n.note_str, "raw_cents": am.nan_to_none(round(float(r), 1)),
                 "encoded_cents": am.nan_to_none(round(float(e), 1))}
                for n, r, e, ok_r, ok_e in zip(notes, am.cents_off(raw["f0"], pitches), cents, raw["correct"], enc["correct"])
                if not (ok_r and ok_e)],
        })
    if sound:
        report = snd.sound_report(
            recon, audio, sr, families=[getattr(n, "family", None) or getattr(n, "instrument_family_str", "?")
                                        for n in notes],
            instruments=[n.instrument_str for n in notes], pitches=pitches, note_off_s=note_off_s,
            produced_key="roundtrip", pitch=not skip_pitch and "pyin" in pitch_trackers)
        pyin = report.pop("pitch_pyin", None)
        result.update(report)
        if pyin is not None:
            result["pitch_accuracy_pyin_raw"] = pyin["real"]
            result["pitch_accuracy_pyin_encoded"] = pyin["roundtrip"]
            result["pitch_pyin"] = pyin
    return result, {"audio": audio, "recon": recon, "notes": notes}


def _learned_dims(codec: Codec, emb: torch.Tensor) -> int:
    """How many leading dims of ``emb`` the encoder learned (all of them for codecs without a pitch feature)."""
    return int(getattr(getattr(codec, "config", None), "learned_dims", emb.shape[-1]))


def embedding_health(codec: Codec, emb: torch.Tensor) -> dict:
    """Is the embedding alive? Per-dim spread of the learned dims and how much the output changes when they are
    swapped between notes (the YIN pitch dims of the bundled codec are kept).

    Why: a tanh on the encoder output once saturated unnoticed (all learned dims constant at +-1; the decoder ran on
    pitch alone and every spectral number still looked good). ``swap_change`` near 0 means the decoder ignores them.
    """
    learned = emb[..., : _learned_dims(codec, emb)]
    std = learned.reshape(-1, learned.shape[-1]).float().std(0)
    alive = int((std > 1e-2 * float(std.max().clamp_min(1e-9))).sum())
    out = {"learned_dims": int(learned.shape[-1]), "learned_dims_alive": alive,
           "learned_std_median": round(float(std.median()), 5)}
    if len(emb) > 1:
        y = codec.decode(emb)
        swapped = emb.clone()
        swapped[..., : learned.shape[-1]] = emb.roll(1, dims=0)[..., : learned.shape[-1]]
        out["swap_change"] = round(float((codec.decode(swapped) - y).norm() / y.norm().clamp_min(1e-9)), 4)
        out.update(regressability(codec, emb, y))
    return out


def _level_db(quiet: torch.Tensor, loud: torch.Tensor) -> float:
    """Median over notes of the RMS ratio in dB."""
    rms = lambda w: w.float().square().mean(-1).sqrt().clamp_min(1e-9)  # noqa: E731
    return round(float((20 * torch.log10(rms(quiet) / rms(loud))).median()), 2)


def regressability(codec: Codec, emb: torch.Tensor, decoded: torch.Tensor | None = None) -> dict:
    """Does the code survive what a regression model does to it? The VAE decoder and the generator are trained with
    MSE, so their outputs are smoothed, averaged versions of real codes.

    - ``lag1_autocorr``: median over learned dims of the within-note lag-1 autocorrelation (near 1 = slowly
      varying; v4 had -0.24 on 25 valid notes: white over time);
    - ``smoothed_level_db``: level of notes decoded from codes whose learned dims are average-pooled over 4 frames and
      linearly upsampled (the VAE's time grid), relative to the real codes; ``note_mean_level_db``: from each note's
      time-mean learned dims (the measured pitch / loudness dims kept as they are).
      Near 0 dB means the sound is carried by slowly varying values that an average keeps (v4: about -9 and -46 dB,
      which is why its VAE and generator notes were near-silent).
    """
    learned = _learned_dims(codec, emb)
    x = emb.float()
    d = x[..., :learned] - x[..., :learned].mean(1, keepdim=True)
    ac = (d[:, 1:] * d[:, :-1]).sum((0, 1)) / d.square().sum((0, 1)).clamp_min(1e-12)
    y = codec.decode(emb) if decoded is None else decoded
    t = x.shape[1]
    pooled = torch.nn.functional.avg_pool1d(x.transpose(1, 2), 4, ceil_mode=True)
    smooth = torch.nn.functional.interpolate(pooled, scale_factor=4, mode="linear")[..., :t].transpose(1, 2)
    # only the learned dims are averaged: the measured feature dims (YIN pitch; v6's loudness curve) are smooth
    # envelopes a regression model reproduces, and averaging v6's loudness over the silent tail would measure the
    # averaging of the envelope, not whether the code survives it (v1-v5 kept only the pitch there: same numbers)
    smooth[..., learned:] = x[..., learned:]
    flat = x.clone()
    flat[..., :learned] = x[..., :learned].mean(1, keepdim=True)
    return {"lag1_autocorr": round(float(ac.median()), 3),
            "smoothed_level_db": _level_db(codec.decode(smooth), y),
            "note_mean_level_db": _level_db(codec.decode(flat), y)}


def _by_family(notes: list, recon: torch.Tensor, audio: torch.Tensor) -> dict:
    """MR-STFT distance per instrument family: where the codec is weakest."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(notes):
        groups.setdefault(getattr(n, "family", "") or "?", []).append(i)
    return {f: round(am.mrstft_distance(recon[idx], audio[idx]), 3) for f, idx in sorted(groups.items())}


def _held_level(recon: torch.Tensor, audio: torch.Tensor, sr: int) -> dict:
    """Level of the round trip against the original over the held part (0.25-3 s), in dB: median and 10th/90th
    percentiles over notes. A loudness-tracking check the spectral distances do not make obvious."""
    a, b = int(0.25 * sr), int(3.0 * sr)
    rx = audio[:, a:b].square().mean(1).sqrt().clamp_min(1e-6)
    ry = recon[:, a:b].square().mean(1).sqrt().clamp_min(1e-6)
    db = 20 * torch.log10(ry / rx)
    return {"median": round(float(db.median()), 2), "p10": round(float(db.quantile(0.1)), 2),
            "p90": round(float(db.quantile(0.9)), 2)}


def _harmonic_stats(codec, emb: torch.Tensor, pitches: np.ndarray, audio: torch.Tensor, n_samples: int) -> dict:
    """What the harmonic decoder's own controls say: f0-head accuracy and the harmonic/noise energy balance."""
    heads, harm_e, noise_e = [], 0.0, 0.0
    dec = codec.model.decoder
    for i in range(0, len(emb), 25):
        ctrl = codec.controls(emb[i:i + 25])
        rms = audio[i:i + 25, : ctrl["f0_midi"].shape[1] * codec.hop_length]
        frames = rms.reshape(rms.shape[0], -1, codec.hop_length).square().mean(-1).sqrt()
        loud = frames > 3e-3
        f0 = ctrl["f0_midi"]
        for j in range(len(f0)):
            sel = f0[j][loud[j][: f0.shape[1]]] if loud[j].any() else f0[j]
            heads.append(float(sel.median()))
        from synth.codec.harmonic import harmonic_synth, midi_to_hz

        f0_hz = midi_to_hz(f0)
        h = harmonic_synth(f0_hz, dec.harmonic_amps(f0_hz, ctrl["amp"], ctrl["harm"]), dec.hop, dec.sample_rate)
        nz = dec.noise(ctrl["noise"])
        harm_e += float(h.square().sum())
        noise_e += float(nz.square().sum())
    err = np.abs(np.array(heads) - pitches) * 100
    return {"f0_head_accuracy": round(float((err <= 50).mean()), 4),
            "f0_head_median_abs_cents": round(float(np.median(err)), 2),
            "noise_energy_share": round(noise_e / max(harm_e + noise_e, 1e-12), 4)}


def write_examples(arrays: dict, folder: str | Path, sample_rate: int, count: int = 8, seconds: float = 2.0) -> list[str]:
    """Round trips of ``count`` notes spread over the evaluated set, ``seconds`` long, 16-bit WAV; names say the note."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    notes = arrays["notes"]
    idx = np.linspace(0, len(notes) - 1, min(count, len(notes))).round().astype(int)
    written = []
    n = int(seconds * sample_rate)
    for k, i in enumerate(idx):
        wave = arrays["recon"][i, :n].numpy()
        fade = min(len(wave), int(0.02 * sample_rate))
        wave[-fade:] *= np.linspace(1, 0, fade)
        name = f"{k:02d}_{notes[i].note_str}_roundtrip.wav"
        sf.write(folder / name, np.clip(wave, -1, 1), sample_rate, subtype="PCM_16")
        written.append(name)
    return written
