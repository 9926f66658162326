"""Audio measurements shared by the codec eval and the generator eval, so their numbers are comparable.

- Pitch accuracy by an independent pretrained f0 tracker (torchcrepe "tiny"), on a window of the held part of the
  note (default 0.25-1.25 s, 20 ms hop: crepe is the cost of the eval on this CPU), median f0 over voiced frames,
  correct when within 50 cents of the target MIDI pitch. Run the same function on real notes ("ground truth raw")
  and on codec round trips ("ground truth encoded"): the tracker itself errs on some real instruments.
- Multi-resolution STFT distance (auraloss, its default three resolutions: spectral convergence + log magnitude).
- Log-mel L1: mean absolute difference of log10 mel power (80 bands, 1024-point FFT, hop 256).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

CREPE_SAMPLE_RATE = 16_000


@dataclass
class PitchConfig:
    start_s: float = 0.25
    end_s: float = 1.25
    hop_s: float = 0.02
    model: str = "tiny"
    voiced_threshold: float = 0.5  # crepe periodicity above this counts as voiced
    tolerance_cents: float = 50.0
    fmin: float = 30.0
    fmax: float = 2000.0
    batch_size: int = 512


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    if orig_sr == new_sr:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, orig_sr, new_sr)


CREPE_FRAME = 1024


def _crepe_decode(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f0 (Hz) and periodicity from crepe's bin probabilities ``[frames, 360]``: probability-weighted mean of the
    cents of the nine bins around the peak (crepe's local average); periodicity is the peak probability."""
    import torchcrepe

    peak, bins = probs.max(dim=1)
    idx = (bins[:, None] + torch.arange(-4, 5)[None, :]).clamp(0, probs.shape[1] - 1)
    weights = probs.gather(1, idx)
    cents = torchcrepe.convert.bins_to_cents(idx.float())
    mean_cents = (weights * cents).sum(1) / weights.sum(1).clamp_min(1e-12)
    return torchcrepe.convert.cents_to_frequency(mean_cents), peak


@torch.no_grad()
def median_f0(waves: torch.Tensor, sample_rate: int, cfg: PitchConfig | None = None) -> np.ndarray:
    """Median crepe f0 (Hz) over voiced frames of the window, per note; NaN when no frame is voiced.

    Why not ``torchcrepe.predict``: here it returned ~1980 Hz with zero periodicity for clean sines (measured), while
    ``torchcrepe.infer`` on our own normalized 1024-sample frames is right, and is what the dataset gate uses.
    """
    import torchcrepe

    cfg = cfg or PitchConfig()
    waves = torch.as_tensor(waves, dtype=torch.float32)
    if waves.dim() == 1:
        waves = waves[None]
    a, b = int(cfg.start_s * sample_rate), int(cfg.end_s * sample_rate)
    seg = resample(waves[:, a:b], sample_rate, CREPE_SAMPLE_RATE)
    hop = int(round(cfg.hop_s * CREPE_SAMPLE_RATE))
    if seg.shape[1] < CREPE_FRAME:
        seg = torch.nn.functional.pad(seg, (0, CREPE_FRAME - seg.shape[1]))
    frames = seg.unfold(1, CREPE_FRAME, hop)  # [B, F, 1024]
    n_notes, n_frames = frames.shape[:2]
    frames = frames.reshape(-1, CREPE_FRAME)
    frames = frames - frames.mean(1, keepdim=True)
    frames = frames / frames.std(1, keepdim=True).clamp_min(1e-10)
    probs = torch.cat([torchcrepe.infer(frames[i:i + cfg.batch_size], cfg.model)
                       for i in range(0, len(frames), cfg.batch_size)])
    f0, per = _crepe_decode(probs)
    f0, per = f0.reshape(n_notes, n_frames).numpy(), per.reshape(n_notes, n_frames).numpy()
    out = np.full(n_notes, np.nan)
    for i in range(n_notes):
        voiced = per[i] >= cfg.voiced_threshold
        if voiced.any():
            out[i] = float(np.median(f0[i][voiced]))
    return out


def cents_off(f0_hz: np.ndarray, midi: np.ndarray) -> np.ndarray:
    """Signed distance in cents from the target MIDI pitch (NaN stays NaN)."""
    target = 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1200.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / target)


def pitch_correct(f0_hz: np.ndarray, midi: np.ndarray, tolerance_cents: float = 50.0) -> np.ndarray:
    """Bool per note: tracked median f0 within the tolerance (unvoiced counts as wrong)."""
    c = cents_off(f0_hz, midi)
    return np.nan_to_num(np.abs(c), nan=np.inf) <= tolerance_cents


def pitch_accuracy(waves: torch.Tensor, sample_rate: int, midi, cfg: PitchConfig | None = None) -> dict:
    """Share of notes in tune (plus the per-note f0 for further analysis)."""
    cfg = cfg or PitchConfig()
    f0 = median_f0(waves, sample_rate, cfg)
    ok = pitch_correct(f0, np.asarray(midi), cfg.tolerance_cents)
    return {"accuracy": float(ok.mean()) if len(ok) else float("nan"), "f0": f0, "correct": ok}


_MRSTFT = None


def mrstft_distance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """auraloss multi-resolution STFT distance (default resolutions), mean over the batch; waves ``[B, S]``."""
    global _MRSTFT
    import auraloss

    if _MRSTFT is None:
        _MRSTFT = auraloss.freq.MultiResolutionSTFTLoss()
    n = min(pred.shape[-1], target.shape[-1])
    with torch.no_grad():
        return float(_MRSTFT(pred[..., None, :n].float(), target[..., None, :n].float()))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """HTK-style triangular mel filters ``[n_fft//2+1, n_mels]`` (own code: no compiled torchaudio needed)."""
    fmax = fmax or sample_rate / 2

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fb = np.zeros((len(freqs), n_mels), dtype=np.float32)
    for m in range(n_mels):
        lo, mid, hi = pts[m], pts[m + 1], pts[m + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
    return torch.from_numpy(fb)


def log_mel(wave: torch.Tensor, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> torch.Tensor:
    spec = torch.stft(wave.float(), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().square()
    mel = spec.transpose(-1, -2) @ mel_filterbank(sample_rate, n_fft, n_mels)
    return torch.log10(mel + 1e-5)


def log_mel_l1(pred: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """Mean |log10 mel(pred) - log10 mel(target)| over the batch, frames and bands."""
    n = min(pred.shape[-1], target.shape[-1])
    with torch.no_grad():
        return float((log_mel(pred[..., :n], sample_rate) - log_mel(target[..., :n], sample_rate)).abs().mean())


def nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x
