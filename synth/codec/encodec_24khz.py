"""Meta's pretrained EnCodec 24 kHz behind the ``Codec`` contract, as the pGESAM authors used it.

6 kbps (8 codebooks), ``normalize=False``; the embedding is the 128-dim *quantized* latent (codes summed back through
the codebooks), 75 frames/s, time-major. Decoding runs the EnCodec decoder on that latent.

Why fail at once offline: ``torch.hub`` would otherwise try the network and hang or fail with a socket error that
does not say what to do. We look for the checkpoint (explicit path, then ``SYNTH_ENCODEC_CHECKPOINT``, then the
torch hub cache) and only download when asked to (``allow_download=True``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from synth.codec.base import Codec, CodecError

CHECKPOINT_NAME = "encodec_24khz-d7cc33bc.th"
CHECKPOINT_URL = "https://dl.fbaipublicfiles.com/encodec/v0/" + CHECKPOINT_NAME
ENV_VAR = "SYNTH_ENCODEC_CHECKPOINT"
BANDWIDTH_KBPS = 6.0


def hub_cache_path() -> Path:
    """Where ``torch.hub`` keeps downloaded checkpoints (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT_NAME


def missing_checkpoint_message() -> str:
    return (f"EnCodec 24 kHz needs its pretrained checkpoint {CHECKPOINT_NAME}, and it was not found.\n"
            f"  Download it (on a machine with internet): {CHECKPOINT_URL}\n"
            f"  then either put it at {hub_cache_path()}\n"
            f"  or pass --encodec-checkpoint PATH (or set {ENV_VAR}=PATH).")


def resolve_checkpoint(checkpoint: str | Path | None = None) -> Path | None:
    """The first existing checkpoint among: the argument, the environment variable, the torch hub cache."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CodecError(f"EnCodec checkpoint {path} does not exist.\n" + missing_checkpoint_message())
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise CodecError(f"{ENV_VAR}={env} does not point to a file.\n" + missing_checkpoint_message())
        return path
    cached = hub_cache_path()
    return cached if cached.is_file() else None


class EncodecCodec(Codec):
    """``encodec-24khz``. ``pretrained=False`` builds the architecture with random weights (tests, timing)."""

    name = "encodec-24khz"

    def __init__(self, checkpoint: str | Path | None = None, allow_download: bool = False, pretrained: bool = True,
                 device: str | torch.device = "cpu"):
        from encodec import EncodecModel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = EncodecModel.encodec_model_24khz(pretrained=False)
        if pretrained:
            path = resolve_checkpoint(checkpoint)
            if path is not None:
                state = torch.load(path, map_location="cpu", weights_only=True)
            elif allow_download:
                state = torch.hub.load_state_dict_from_url(CHECKPOINT_URL, map_location="cpu", check_hash=True)
            else:
                raise CodecError(missing_checkpoint_message())
            model.load_state_dict(state)
        model.set_target_bandwidth(BANDWIDTH_KBPS)
        model.normalize = False
        self.model = model.eval().to(device)
        self.sample_rate = model.sample_rate
        self.hop_length = int(model.encoder.hop_length)
        self.dim = int(model.encoder.dimension)
        self.pretrained = pretrained

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> "EncodecCodec":
        self.model.to(device)
        return self

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.pad_to_frames(wave.to(self.device, torch.float32))[:, None]
        latent = self.model.encoder(x)  # [B, 128, T]
        codes = self.model.quantizer.encode(latent, self.model.frame_rate, self.model.bandwidth)  # [K, B, T]
        return self.model.quantizer.decode(codes).transpose(1, 2)  # [B, T, 128]

    @torch.inference_mode()
    def decode(self, emb: torch.Tensor) -> torch.Tensor:
        out = self.model.decoder(emb.to(self.device, torch.float32).transpose(1, 2))[:, 0]
        return out[:, : emb.shape[1] * self.hop_length]

    def describe(self) -> dict:
        return {**super().describe(), "bandwidth_kbps": BANDWIDTH_KBPS, "pretrained": self.pretrained}
