"""Sound measures of a set of produced notes (codec round trips, generated notes) against their real notes.

Pure functions over batches of mono float waves ``[N, S]`` (numpy or torch, CPU) at one sample rate, so that the codec
eval (``python -m synth codec eval``) and the generator eval report the same numbers. ``sound_report`` is the entry
point; the per-note functions below it return arrays for further analysis. Levels are dB re digital full scale (an RMS
of 1.0 is 0 dBFS). Definitions (one line each, as quoted in the model cards):

- release: level = RMS in 20 ms windows (10 ms hop); level at the note-off = RMS of the 100 ms before it; a note
  "reaches -40 dB" when some window entirely inside the 1 s after the note-off is 40 dB under that level (or under
  -90 dBFS, whichever is higher).
- swell: after the note-off, 50 ms RMS windows (10 ms hop), floored at max(note-off level - 60 dB, -90 dBFS); a note
  swells when a later window is more than 6 dB above the lowest window since the note-off.
- tail: RMS of the last 0.2 s of the file in dBFS (-120 for digital silence); silent means under -70 dBFS.
- held frames: 2048-point Hann STFT frames (512 hop) entirely within 0.25 s .. note-off whose RMS is within 30 dB of
  the note's loudest such frame and above -70 dBFS.
- flatness: spectral flatness (librosa: geometric / arithmetic mean of the power spectrum) per held frame, mean of its
  dB value over the held frames.
- energy above 6 kHz: power above 6 kHz / all power, summed over the held frames, in dB.
- attack: amplitude envelope = Hilbert magnitude averaged over a whole number of pitch periods (>= 2 ms; 5 ms when
  the pitch is unknown); reference = maximum before the note-off of the envelope averaged over 20 ms; onset = first
  time the envelope reaches 10% of the reference; attack time = onset to the first time it reaches 90%.
- attack brightness: mean power above 3 kHz (8th-order Butterworth high-pass, zero phase) in the 30 ms from the
  onset, in dB re the mean power (all frequencies) from the onset to the note-off.
- timbre: MFCC vector = mean over the held frames of MFCC 1-20 (librosa, 128 mel bands, c0 dropped, log-mel floored
  80 dB under the note's peak, so level does not count); distance = Euclidean between two notes' vectors.
- timbre scale: for each real note, the distance to the nearest real note of another instrument at the same pitch;
  the median of these is the scale a produced note's distance to its own real note is compared with.
- timbre spread: mean pairwise distance between per-instrument mean MFCC vectors (and, beside it, the trace of
  their covariance); reported as produced / real.
- pitch (pYIN): librosa's probabilistic YIN on the same window and hop as the crepe measure (0.25-1.25 s, 20 ms),
  searched within +-14 semitones of the target in 20-cent bins anchored on it (an octave error stays detectable;
  the whole 7-octave range at 10-cent bins cost ~10x more in its Viterbi pass), median f0 over voiced frames,
  correct within 50 cents.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class SoundConfig:
    note_off_s: float = 3.0
    # release
    level_window_s: float = 0.02
    level_hop_s: float = 0.01
    note_off_level_s: float = 0.1
    release_drop_db: float = 40.0
    release_within_s: float = 1.0
    floor_dbfs: float = -90.0
    swell_window_s: float = 0.05
    swell_db: float = 6.0
    swell_range_db: float = 60.0
    tail_s: float = 0.2
    silent_dbfs: float = -70.0
    # held-part spectra (noise, timbre)
    held_start_s: float = 0.25
    n_fft: int = 2048
    hop: int = 512
    frame_range_db: float = 30.0
    frame_floor_dbfs: float = -70.0
    noise_hf_hz: float = 6000.0
    n_mfcc: int = 20
    n_mels: int = 128
    mel_top_db: float = 80.0
    # attack
    attack_min_window_s: float = 0.002
    attack_window_no_pitch_s: float = 0.005
    attack_ref_window_s: float = 0.02
    attack_low: float = 0.1
    attack_high: float = 0.9
    attack_hf_hz: float = 3000.0
    attack_hf_window_s: float = 0.03
    # pitch (pYIN)
    pitch_start_s: float = 0.25
    pitch_end_s: float = 1.25
    pitch_hop_s: float = 0.02
    pitch_search_semitones: float = 14.0
    pitch_resolution: float = 0.2  # semitones; bins fall on the target +- 20 cents, so the 50-cent verdict is exact
    tolerance_cents: float = 50.0
    chunk: int = 50


def as_numpy(waves) -> np.ndarray:
    """``[N, S]`` float32 numpy from numpy or torch (a single wave becomes a batch of one)."""
    if hasattr(waves, "detach"):
        waves = waves.detach().cpu().numpy()
    waves = np.asarray(waves, dtype=np.float32)
    return waves[None] if waves.ndim == 1 else waves


def db(power, floor: float = 1e-12) -> np.ndarray:
    """10 log10 of a power (mean square), floored (1e-12 is -120 dB)."""
    return 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), floor))


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of a 1-D signal over ``width`` samples (zeros outside it: silence around the file)."""
    width = max(1, int(width))
    h = width // 2
    c = np.concatenate([[0.0], np.cumsum(np.pad(np.asarray(x, dtype=np.float64), (h, width - h)))])
    return (c[width: width + len(x)] - c[: len(x)]) / width


def level_frames(waves: np.ndarray, sample_rate: int, window_s: float, hop_s: float,
                 start_s: float = 0.0, end_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RMS level (dBFS) of windows lying entirely inside ``start_s .. end_s``: ``(levels [N, F], window starts s)``."""
    waves = as_numpy(waves)
    w, h = max(1, int(round(window_s * sample_rate))), max(1, int(round(hop_s * sample_rate)))
    a = max(0, int(round(start_s * sample_rate)))
    b = waves.shape[1] if end_s is None else min(waves.shape[1], int(round(end_s * sample_rate)))
    if b - a < w:
        return np.zeros((len(waves), 0)), np.zeros(0)
    c = np.concatenate([np.zeros((len(waves), 1)), np.cumsum(waves[:, a:b].astype(np.float64) ** 2, axis=1)], axis=1)
    starts = np.arange(0, b - a - w + 1, h)
    return db((c[:, starts + w] - c[:, starts]) / w), (a + starts) / sample_rate


def segment_dbfs(waves: np.ndarray, sample_rate: int, start_s: float, end_s: float) -> np.ndarray:
    """RMS of ``start_s .. end_s`` in dBFS (NaN when the segment is empty)."""
    waves = as_numpy(waves)
    a, b = max(0, int(round(start_s * sample_rate))), min(waves.shape[1], int(round(end_s * sample_rate)))
    if b <= a:
        return np.full(len(waves), np.nan)
    return db(np.mean(waves[:, a:b].astype(np.float64) ** 2, axis=1))


def release_measures(waves, sample_rate: int, cfg: SoundConfig | None = None) -> dict:
    """Per note: ``reaches`` (1.0/0.0; NaN when the file ends at the note-off), ``swell`` (1.0/0.0), ``swell_db``
    (largest rise over the running minimum after the note-off), ``note_off_dbfs``, ``tail_dbfs``."""
    cfg = cfg or SoundConfig()
    waves = as_numpy(waves)
    off, sr = cfg.note_off_s, sample_rate
    n = len(waves)
    l0 = segment_dbfs(waves, sr, off - cfg.note_off_level_s, off)
    threshold = np.maximum(l0 - cfg.release_drop_db, cfg.floor_dbfs)
    lev, _ = level_frames(waves, sr, cfg.level_window_s, cfg.level_hop_s, off, off + cfg.release_within_s)
    reaches = np.full(n, np.nan)
    if lev.shape[1]:
        reaches = (lev.min(1) <= threshold).astype(np.float64)
    swell_lev, _ = level_frames(waves, sr, cfg.swell_window_s, cfg.level_hop_s, off, None)
    swell_db = np.full(n, np.nan)
    if swell_lev.shape[1]:
        floor = np.maximum(l0 - cfg.swell_range_db, cfg.floor_dbfs)[:, None]
        s = np.maximum(swell_lev, floor)
        swell_db = (s - np.minimum.accumulate(s, axis=1)).max(1)
    tail = segment_dbfs(waves, sr, waves.shape[1] / sr - cfg.tail_s, waves.shape[1] / sr)
    return {"reaches": reaches, "swell": np.where(np.isnan(swell_db), np.nan, swell_db > cfg.swell_db),
            "swell_db": swell_db, "note_off_dbfs": l0, "tail_dbfs": tail}


def _held_spectra(waves: np.ndarray, sample_rate: int, cfg: SoundConfig) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrogram ``[N, bins, frames]`` of frames entirely in ``held_start .. note-off`` and the held-frame
    mask ``[N, frames]`` (loud enough, see the module docstring)."""
    import torch

    a = int(round(cfg.held_start_s * sample_rate))
    b = min(waves.shape[1], int(round(cfg.note_off_s * sample_rate)))
    seg = torch.from_numpy(np.ascontiguousarray(waves[:, a:b]))
    if seg.shape[1] < cfg.n_fft:
        return np.zeros((len(waves), cfg.n_fft // 2 + 1, 0)), np.zeros((len(waves), 0), dtype=bool)
    window = torch.hann_window(cfg.n_fft)
    spec = torch.stft(seg, cfg.n_fft, cfg.hop, window=window, center=False, return_complex=True)
    power = spec.abs().square().double().numpy()
    frames = seg.unfold(1, cfg.n_fft, cfg.hop).double()
    frame_db = db(frames.square().mean(-1).numpy())
    keep = (frame_db >= frame_db.max(1, keepdims=True) - cfg.frame_range_db) & (frame_db >= cfg.frame_floor_dbfs)
    return power, keep


def spectral_measures(waves, sample_rate: int, cfg: SoundConfig | None = None) -> dict:
    """Per note over the held frames: ``flatness_db``, ``hf_db`` (share of power above ``noise_hf_hz``) and ``mfcc``
    ``[N, n_mfcc]`` (mean MFCC 1..n_mfcc); NaN where a note has no held frame."""
    import librosa

    cfg = cfg or SoundConfig()
    waves = as_numpy(waves)
    n = len(waves)
    flat, hf, mfcc = np.full(n, np.nan), np.full(n, np.nan), np.full((n, cfg.n_mfcc), np.nan)
    freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / sample_rate)
    mel_fb = librosa.filters.mel(sr=sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels)
    for i0 in range(0, n, cfg.chunk):
        power, keep = _held_spectra(waves[i0:i0 + cfg.chunk], sample_rate, cfg)
        if not keep.size:
            continue
        fl = librosa.feature.spectral_flatness(S=power, power=1.0)[:, 0]  # S is already power: [n, frames]
        mel = np.matmul(mel_fb.astype(np.float64), power)  # [n, mels, frames]
        for j in range(len(power)):
            k = keep[j]
            if not k.any():
                continue
            flat[i0 + j] = float(np.mean(db(fl[j, k], 1e-20)))
            p = power[j][:, k]
            hf[i0 + j] = float(db(p[freqs >= cfg.noise_hf_hz].sum() / max(p.sum(), 1e-30), 1e-20))
            mel_db = librosa.power_to_db(mel[j], ref=np.max, amin=1e-20, top_db=cfg.mel_top_db)
            mfcc[i0 + j] = librosa.feature.mfcc(S=mel_db, n_mfcc=cfg.n_mfcc + 1)[1:, k].mean(1)
    return {"flatness_db": flat, "hf_db": hf, "mfcc": mfcc}


def _period_window(sample_rate: int, pitch: float | None, cfg: SoundConfig) -> int:
    """Envelope averaging width in samples: a whole number of pitch periods, at least ``attack_min_window_s``."""
    if pitch is None or not np.isfinite(pitch):
        return max(1, int(round(cfg.attack_window_no_pitch_s * sample_rate)))
    period = sample_rate / (440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0))
    count = max(1, math.ceil(cfg.attack_min_window_s * sample_rate / period - 1e-9))
    return max(1, int(round(count * period)))


def attack_measures(waves, sample_rate: int, pitches=None, cfg: SoundConfig | None = None) -> dict:
    """Per note: ``onset_s``, ``attack_s`` (10-90% time) and ``hf_db`` (power above ``attack_hf_hz`` in the first
    30 ms from the onset, dB re the note's mean power from the onset to the note-off); NaN for silent notes."""
    from scipy.fft import next_fast_len
    from scipy.signal import butter, hilbert, sosfiltfilt

    cfg = cfg or SoundConfig()
    waves = as_numpy(waves)
    n, sr = len(waves), sample_rate
    end = min(waves.shape[1], int(round(cfg.note_off_s * sr)))
    pitches = [None] * n if pitches is None else list(pitches)
    onset, attack, hf = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    sos = butter(8, cfg.attack_hf_hz, btype="highpass", fs=sr, output="sos")
    win30 = int(round(cfg.attack_hf_window_s * sr))
    for i0 in range(0, n, cfg.chunk):
        x = waves[i0:i0 + cfg.chunk, :end].astype(np.float64)
        # zero padding to twice the length: the FFT's wrap-around would carry the cut at the note-off to the onset
        env_raw = np.abs(hilbert(x, N=next_fast_len(2 * x.shape[1]), axis=1))[:, : x.shape[1]]
        onsets = {}
        for j in range(len(x)):
            w = _period_window(sr, pitches[i0 + j], cfg)
            env = _moving_mean(env_raw[j], w)
            ref = _moving_mean(env_raw[j], max(w, int(round(cfg.attack_ref_window_s * sr)))).max()
            if ref < 1e-6:
                continue
            lo = np.flatnonzero(env >= cfg.attack_low * ref)
            if not len(lo):
                continue
            t_lo = int(lo[0])
            hi = np.flatnonzero(env[t_lo:] >= cfg.attack_high * ref)
            if len(hi):
                attack[i0 + j] = hi[0] / sr
            onset[i0 + j] = t_lo / sr
            onsets[j] = t_lo
        if not onsets:
            continue
        stop = min(end, max(onsets.values()) + win30 + int(0.05 * sr))
        high = sosfiltfilt(sos, x[:, :stop], axis=1)
        for j, t in onsets.items():
            whole = np.mean(x[j, t:] ** 2) if t < end else 0.0
            if whole <= 0:
                continue
            hf[i0 + j] = float(db(np.mean(high[j, t:t + win30] ** 2) / whole, 1e-20))
    return {"onset_s": onset, "attack_s": attack, "hf_db": hf}


def median_f0_pyin(waves, sample_rate: int, pitches, cfg: SoundConfig | None = None) -> np.ndarray:
    """Median pYIN f0 (Hz) over voiced frames of the pitch window, per note, searched around each note's target
    pitch (notes of one pitch share a call); NaN when no frame is voiced."""
    import warnings

    import librosa

    cfg = cfg or SoundConfig()
    waves = as_numpy(waves)
    sr = sample_rate
    a, b = int(round(cfg.pitch_start_s * sr)), min(waves.shape[1], int(round(cfg.pitch_end_s * sr)))
    pitches = np.asarray(pitches, dtype=np.float64)
    out = np.full(len(waves), np.nan)
    hop = max(1, int(round(cfg.pitch_hop_s * sr)))
    for p in np.unique(pitches):
        idx = np.flatnonzero(pitches == p)
        target = 440.0 * 2.0 ** ((p - 69.0) / 12.0)
        span = 2.0 ** (cfg.pitch_search_semitones / 12.0)
        fmin, fmax = target / span, min(target * span, 0.49 * sr)
        if fmin >= fmax or b <= a:
            continue
        frame = 2 ** math.ceil(math.log2(2 * sr / fmin + 2))
        seg = waves[idx, a:b]
        if seg.shape[1] < frame:
            seg = np.pad(seg, ((0, 0), (0, frame - seg.shape[1])))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f0, voiced, _ = librosa.pyin(seg, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop,
                                         resolution=cfg.pitch_resolution)
        for j, i in enumerate(idx):
            v = voiced[j] & np.isfinite(f0[j])
            if v.any():
                out[i] = float(np.median(f0[j][v]))
    return out


def pitch_accuracy_pyin(waves, sample_rate: int, pitches, cfg: SoundConfig | None = None) -> dict:
    """Share of notes whose median pYIN f0 is within the tolerance of the target (unvoiced counts as wrong)."""
    from synth.eval.audio_metrics import pitch_correct

    cfg = cfg or SoundConfig()
    f0 = median_f0_pyin(waves, sample_rate, pitches, cfg)
    ok = pitch_correct(f0, np.asarray(pitches), cfg.tolerance_cents)
    return {"accuracy": float(ok.mean()) if len(ok) else float("nan"), "f0": f0, "correct": ok}


def timbre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between paired MFCC vectors ``[N, D]`` (NaN where either is missing)."""
    return np.sqrt(np.sum((np.asarray(a) - np.asarray(b)) ** 2, axis=-1))


def nearest_other_instrument(mfcc: np.ndarray, instruments, pitches) -> np.ndarray:
    """Per note: distance to the nearest note of another instrument at the same pitch (NaN when there is none)."""
    mfcc = np.asarray(mfcc, dtype=np.float64)
    inst, pit = np.asarray(instruments), np.asarray(pitches)
    out = np.full(len(mfcc), np.nan)
    for p in np.unique(pit):
        idx = np.flatnonzero((pit == p) & np.isfinite(mfcc).all(1))
        if len(idx) < 2:
            continue
        d = np.sqrt(((mfcc[idx, None] - mfcc[None, idx]) ** 2).sum(-1))
        d[inst[idx][:, None] == inst[idx][None, :]] = np.inf
        best = d.min(1)
        out[idx] = np.where(np.isfinite(best), best, np.nan)
    return out


def instrument_means(mfcc: np.ndarray, instruments) -> tuple[list, np.ndarray]:
    """Per-instrument mean MFCC vectors over the notes that have one: ``(names, [I, D])``."""
    mfcc = np.asarray(mfcc, dtype=np.float64)
    inst = np.asarray(instruments)
    ok = np.isfinite(mfcc).all(1)
    names = sorted(set(inst[ok].tolist()))
    return names, np.array([mfcc[ok & (inst == k)].mean(0) for k in names]).reshape(len(names), mfcc.shape[1])


def timbre_spread(mfcc: np.ndarray, instruments) -> dict:
    """Spread of timbres across instruments: mean pairwise distance and trace of the covariance of the
    per-instrument mean MFCC vectors (NaN with fewer than two instruments)."""
    _, means = instrument_means(mfcc, instruments)
    if len(means) < 2:
        return {"mean_pairwise": float("nan"), "trace_cov": float("nan"), "instruments": len(means)}
    d = np.sqrt(((means[:, None] - means[None]) ** 2).sum(-1))
    return {"mean_pairwise": float(d[np.triu_indices(len(means), 1)].mean()),
            "trace_cov": float(np.trace(np.cov(means.T))), "instruments": len(means)}


# ---- summaries -------------------------------------------------------------------------------------------------


def _num(x, digits: int = 4):
    """JSON-able rounded float (None for NaN/inf)."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def _pct(values: np.ndarray, q: float, digits: int = 2):
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return _num(np.percentile(v, q), digits) if len(v) else None


def _share(flags: np.ndarray):
    f = np.asarray(flags, dtype=np.float64)
    f = f[np.isfinite(f)]
    return _num(f.mean()) if len(f) else None


def _ratio(a, b, digits: int = 3):
    return _num(a / b, digits) if a is not None and b not in (None, 0) else None


def _diff(a, b, digits: int = 2):
    return _num(a - b, digits) if a is not None and b is not None else None


def release_summary(rel: dict, cfg: SoundConfig) -> dict:
    return {"share_reaching_40db": _share(rel["reaches"]), "share_swell_6db": _share(rel["swell"]),
            "tail_dbfs_p50": _pct(rel["tail_dbfs"], 50), "tail_dbfs_p90": _pct(rel["tail_dbfs"], 90),
            "note_off_dbfs_p50": _pct(rel["note_off_dbfs"], 50),
            "tail_silent": int(np.sum(rel["tail_dbfs"] < cfg.silent_dbfs)),
            "notes": int(np.isfinite(rel["reaches"]).sum())}


def noise_summary(spec: dict) -> dict:
    return {"flatness_db_p50": _pct(spec["flatness_db"], 50), "flatness_db_p90": _pct(spec["flatness_db"], 90),
            "hf6k_db_p50": _pct(spec["hf_db"], 50), "hf6k_db_p90": _pct(spec["hf_db"], 90),
            "notes": int(np.isfinite(spec["flatness_db"]).sum())}


def attack_summary(att: dict, idx: np.ndarray) -> dict:
    return {"attack_ms_p50": _pct(att["attack_s"][idx] * 1000, 50, 1),
            "attack_ms_p90": _pct(att["attack_s"][idx] * 1000, 90, 1),
            "hf30ms_db_p50": _pct(att["hf_db"][idx], 50), "notes": int(np.isfinite(att["attack_s"][idx]).sum())}


def sound_report(produced, real, sample_rate: int, families=None, instruments=None, pitches=None,
                 note_off_s: float = 3.0, produced_key: str = "produced", pitch: bool = True,
                 cfg: SoundConfig | None = None) -> dict:
    """All sound measures of ``produced`` against the paired ``real`` notes (same order): a JSON-able dict with keys
    ``release``, ``noise``, ``attack_by_family`` (plus ``all``), ``timbre`` and, when ``pitch`` and ``pitches`` are
    given, ``pitch_pyin``; each holds ``real`` and ``<produced_key>`` values and their comparison."""
    import time

    cfg = cfg or SoundConfig()
    cfg = SoundConfig(**{**asdict(cfg), "note_off_s": note_off_s})
    produced, real = as_numpy(produced), as_numpy(real)
    if produced.shape[0] != real.shape[0]:
        raise ValueError(f"produced and real differ in note count: {produced.shape[0]} vs {real.shape[0]}")
    n = len(real)
    families = ["?"] * n if families is None else [f or "?" for f in families]
    instruments = [str(i) for i in range(n)] if instruments is None else list(instruments)
    pk = produced_key
    t0 = time.perf_counter()
    out: dict = {}

    rel = {"real": release_measures(real, sample_rate, cfg), pk: release_measures(produced, sample_rate, cfg)}
    r_sum, p_sum = release_summary(rel["real"], cfg), release_summary(rel[pk], cfg)
    loud_tail = (rel[pk]["tail_dbfs"] > cfg.silent_dbfs) & (rel["real"]["tail_dbfs"] < cfg.silent_dbfs)
    out["release"] = {
        "note_off_s": note_off_s, "real": r_sum, pk: p_sum,
        "share_ratio": _ratio(p_sum["share_reaching_40db"], r_sum["share_reaching_40db"]),
        "tail_above_-70dbfs_where_real_silent": int(loud_tail.sum()),
    }

    spec = {"real": spectral_measures(real, sample_rate, cfg), pk: spectral_measures(produced, sample_rate, cfg)}
    nr, npd = noise_summary(spec["real"]), noise_summary(spec[pk])
    out["noise"] = {"real": nr, pk: npd,
                    "diff_db": {k: _diff(npd[k], nr[k]) for k in ("flatness_db_p50", "flatness_db_p90",
                                                                   "hf6k_db_p50", "hf6k_db_p90")}}

    att = {"real": attack_measures(real, sample_rate, pitches, cfg),
           pk: attack_measures(produced, sample_rate, pitches, cfg)}
    fam = np.asarray(families)
    by_family = {}
    for f in sorted(set(families)) + ["all"]:
        idx = np.ones(n, dtype=bool) if f == "all" else fam == f
        ar, ap = attack_summary(att["real"], idx), attack_summary(att[pk], idx)
        by_family[f] = {"real": ar, pk: ap, "attack_ratio": _ratio(ap["attack_ms_p50"], ar["attack_ms_p50"]),
                        "hf30ms_diff_db": _diff(ap["hf30ms_db_p50"], ar["hf30ms_db_p50"])}
    out["attack_by_family"] = by_family

    m_real, m_prod = spec["real"]["mfcc"], spec[pk]["mfcc"]
    own = timbre_distance(m_prod, m_real)
    timbre: dict = {"distance_to_own_p50": _pct(own, 50), "distance_to_own_mean": _num(np.nanmean(own), 3)
                    if np.isfinite(own).any() else None}
    if pitches is not None:
        other = nearest_other_instrument(m_real, instruments, pitches)
        scale = _pct(other, 50)
        timbre["real_nearest_other_instrument_p50"] = scale
        both = np.isfinite(own) & np.isfinite(other)
        timbre["share_closer_than_scale"] = _share(own[np.isfinite(own)] < scale) if scale is not None else None
        timbre["share_closer_than_own_nearest_other"] = _share(own[both] < other[both]) if both.any() else None
        timbre["own_over_scale"] = _ratio(timbre["distance_to_own_p50"], scale)
    s_real, s_prod = timbre_spread(m_real, instruments), timbre_spread(m_prod, instruments)
    timbre["spread"] = {"real": {k: v if k == "instruments" else _num(v, 3) for k, v in s_real.items()},
                        pk: {k: v if k == "instruments" else _num(v, 3) for k, v in s_prod.items()}}
    timbre["spread_ratio"] = _ratio(s_prod["mean_pairwise"], s_real["mean_pairwise"])
    timbre["spread_ratio_trace_cov"] = _ratio(s_prod["trace_cov"], s_real["trace_cov"])
    out["timbre"] = timbre

    if pitch and pitches is not None:
        t1 = time.perf_counter()
        pr = pitch_accuracy_pyin(real, sample_rate, pitches, cfg)
        pp = pitch_accuracy_pyin(produced, sample_rate, pitches, cfg)
        out["pitch_pyin"] = {
            "real": _num(pr["accuracy"]), pk: _num(pp["accuracy"]),
            f"{pk}_where_real_correct": _num(pp["correct"][pr["correct"]].mean()) if pr["correct"].any() else None,
            "window_s": [cfg.pitch_start_s, cfg.pitch_end_s], "search_semitones": cfg.pitch_search_semitones,
            "tolerance_cents": cfg.tolerance_cents, "seconds": round(time.perf_counter() - t1, 1)}
    out["sound_eval_s"] = round(time.perf_counter() - t0, 1)
    return out
