"""The loudness feature: one embedding dimension that carries each frame's level, and the decoder's amplitude path.

Why an explicit loudness channel (codec v6): in v5a the overall amplitude came out of the learned dims through an
``exp`` with no floor of zero, so the release could not fall silent (a pitched hum at about -45 dBFS to the end of
the file) and decaying notes kept a drone ~30 dB under the strike. DDSP's decoder is likewise driven by a measured
loudness curve. Here the frame level is measured from the audio (like the YIN pitch dimension, no weights), written
into the embedding, and the decoder's amplitude is ``10^(dB/20)`` of it times a bounded learned correction, with a
gate that is exactly zero at ``FLOOR_DB`` and below: whoever writes the embedding (the generator) writes the
envelope, and a written silence is a true digital silence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FLOOR_DB = -100.0  # at and below this level the amplitude is exactly zero
GATE_DB = 10.0  # the amplitude fades linearly to zero over the last GATE_DB above the floor
CENTER_DB = -50.0
SCALE_DB = 50.0  # feature = (dB - CENTER_DB) / SCALE_DB: [-1, 1] over the floor .. 0 dBFS


def frame_level_db(wave: torch.Tensor, hop: int) -> torch.Tensor:
    """RMS level in dBFS of each frame ``[B, T]`` (T = S // hop), frame k centred on sample k * hop (the codec's
    framing) with a Hann window of two hops, clamped to [FLOOR_DB, 0]."""
    win = 2 * hop
    frames = wave.shape[-1] // hop
    x = F.pad(wave, (hop, hop))
    fr = x.unfold(-1, win, hop)[..., :frames, :]
    w = torch.hann_window(win, periodic=False, device=wave.device, dtype=wave.dtype)
    power = (fr.square() * w).sum(-1) / w.sum()
    return (10.0 * torch.log10(power.clamp_min(1e-12))).clamp(FLOOR_DB, 0.0)


def loudness_feature(wave: torch.Tensor, hop: int) -> torch.Tensor:
    """The embedding dimension ``[B, T, 1]``: the frame level scaled to about [-1, 1]."""
    with torch.no_grad():
        return ((frame_level_db(wave, hop) - CENTER_DB) / SCALE_DB)[..., None]


def feature_db(feature: torch.Tensor) -> torch.Tensor:
    """Inverse of the scaling: level in dB (not clamped: a generator may write below the floor)."""
    return feature * SCALE_DB + CENTER_DB


def amplitude(feature: torch.Tensor) -> torch.Tensor:
    """Linear RMS amplitude of a loudness feature, exactly 0 at and below ``FLOOR_DB`` (the gate), and equal to
    ``10^(dB/20)`` from ``FLOOR_DB + GATE_DB`` up. Capped at +12 dBFS so a wild generator cannot blast."""
    db = feature_db(feature).clamp(max=12.0)
    gate = ((db - FLOOR_DB) / GATE_DB).clamp(0.0, 1.0)
    return torch.pow(10.0, db / 20.0) * gate
