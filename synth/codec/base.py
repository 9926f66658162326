"""The codec contract: waveforms in, time-major embeddings out, and back.

Why a contract: the VAE and the generator only ever see ``[T, D]`` frames; they must not care whether the frames
come from Meta's pretrained EnCodec or from the small codec trained here. Everything above the codec layer talks to
this class only (see docs/INTERFACES.md).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch


class CodecError(RuntimeError):
    """A codec cannot be built or loaded (missing checkpoint, bad folder); the message says how to fix it."""


class Codec(ABC):
    """Waveform <-> embedding. Subclasses set ``name``, ``sample_rate``, ``hop_length`` and ``dim``.

    ``encode(wave[B, S]) -> emb[B, T, D]`` with ``T = num_frames(S)`` (the input is zero-padded on the right to a
    whole number of frames); ``decode(emb[B, T, D]) -> wave[B, T * hop_length]``. Both run without gradients and
    accept tensors on any device the codec was moved to with ``to``.
    """

    name: str = "codec"
    sample_rate: int = 24_000
    hop_length: int = 320
    dim: int = 128

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        return int(math.ceil(num_samples / self.hop_length))

    def pad_to_frames(self, wave: torch.Tensor) -> torch.Tensor:
        """Right-pad ``wave[B, S]`` with zeros to ``num_frames(S) * hop_length`` samples."""
        extra = self.num_frames(wave.shape[-1]) * self.hop_length - wave.shape[-1]
        return torch.nn.functional.pad(wave, (0, extra)) if extra else wave

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> "Codec":
        return self

    @abstractmethod
    def encode(self, wave: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def decode(self, emb: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> dict:
        """A small JSON-able summary for bundles, caches and eval output."""
        return {"name": self.name, "sample_rate": self.sample_rate, "frame_rate": self.frame_rate,
                "hop_length": self.hop_length, "dim": self.dim}
