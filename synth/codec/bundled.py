"""The codec trained by this project: a SEANet encoder and either the harmonic-plus-noise decoder or a slim SEANet
decoder (the baseline), saved as a folder ``config.json`` + ``codec.pt`` (a state_dict only; never pickled modules).

Why a continuous embedding (no quantizer): the generator regresses frames with MSE, so a smooth space helps it more
than discrete codes would. Its scale is kept in check by an L2 penalty during training (a tanh bound saturated).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from synth.atomic import save_torch
from synth.codec.base import Codec, CodecError
from synth.codec.harmonic import HarmonicDecoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "codec.pt"
FORMAT_VERSION = 1


@dataclass
class CodecConfig:
    """Everything needed to rebuild the network; saved as JSON next to the weights."""

    arch: str = "harmonic"  # "harmonic" | "seanet"
    name: str = "bundled"
    sample_rate: int = 24_000
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])  # hop 320 -> 75 frames/s at 24 kHz
    dim: int = 64
    enc_filters: int = 8
    enc_lstm: int = 1
    # tanh on the encoder output saturated in both 35-minute runs (pre-activations |x| > 8 on every frame, learned
    # dims constant at +-1, the decoder used only the pitch dims): off by default; train.py bounds the scale with a
    # small L2 penalty instead (TrainConfig.w_emb).
    emb_tanh: bool = False
    # BatchNorm (no affine) on the learned dims: at init the SEANet encoder's input-dependent signal shrinks ~20x from
    # the first layer to the output (std 0.047 -> 0.002 on real notes, biases dominate), so the decoder found the YIN
    # pitch path first and never used the learned dims (v1-v3). Normalizing gives them unit variance from step one.
    emb_norm: bool = False
    # The BatchNorm's epsilon. PyTorch's 1e-5 let v6's encoder drift into a regime where its pre-norm variance was
    # at or below epsilon (running variance median 1.3e-5 at step 2300, falling), so the "normalized" dims shrank
    # towards the fixed training noise (mean square 0.95 -> 0.17 over 3000 steps) and would have died as v1-v3's
    # did. 1e-12 normalizes whatever the scale; old folders keep 1e-5 and decode as before.
    emb_norm_eps: float = 1e-5
    pitch_feature: bool = False  # last embedding dims from YIN (see pitch.py): pitch (+ periodicity if 2 dims)
    pitch_feature_dims: int = 2
    # YIN's window and search range for the pitch dim: the defaults cover MIDI ~31-95 (v1-v5); v6 uses
    # 2048 / 25 / 4500 for the whole keyboard, MIDI 21-108
    yin_win: int = 1024
    yin_fmin: float = 50.0
    yin_fmax: float = 2000.0
    # v6: one embedding dim carries the measured frame level (synth/codec/loudness.py) and drives the decoder's
    # amplitude, so a written silence decodes to true silence; it sits between the learned dims and the pitch dim
    loudness_feature: bool = False
    fine_env: int = 0  # v6: sub-frame gain points per frame (sharper attacks); 0 = off
    noise_init_db: float = -65.0  # v6: the noise bands' initial level relative to the amplitude
    amp_correction_db: float = 12.0  # v6: bound of the decoder's correction to the loudness channel
    # v6.3: a note's first frame plays at the level of the frame after it (see harmonic.fill_onsets); off for older
    # folders, whose decoders were trained without it
    onset_fill: bool = False
    # The exponent p of the harmonic distribution's 1/k^p amplitude prior (logit offset -p ln k); v1-v6.3: 2. Under
    # 1/k^2 a low note's harmonics near 6 kHz (k ~ 100) start at -80 dB, and the round trips of MIDI 21-47 sit 15 dB
    # under the real notes above 6 kHz; decoders fine-tuned with p = 1 and 1.5 did not lift them (CODEC_CARD.md,
    # session 14): an option kept for whole-codec training, not a fix
    harm_prior: float = 2.0
    # harmonic decoder
    hidden: int = 128
    n_blocks: int = 4
    n_harmonics: int = 80
    n_noise_bands: int = 64
    midi_min: float = 20.0
    midi_max: float = 110.0
    noise_seed: int = 0
    f0_bins_per_semitone: int = 5
    # seanet baseline decoder
    dec_filters: int = 8
    dec_lstm: int = 0
    format_version: int = FORMAT_VERSION

    @property
    def learned_dims(self) -> int:
        """Embedding dims the encoder learns; the measured feature dims follow them: loudness (v6), then the YIN
        pitch (+ periodicity), last."""
        return self.dim - (self.pitch_feature_dims if self.pitch_feature else 0) - int(self.loudness_feature)

    @property
    def loudness_dim(self) -> int | None:
        return self.learned_dims if self.loudness_feature else None

    @property
    def pitch_dim(self) -> int | None:
        return self.learned_dims + int(self.loudness_feature) if self.pitch_feature else None

    @property
    def hop_length(self) -> int:
        hop = 1
        for r in self.ratios:
            hop *= r
        return hop

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "CodecConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CodecError(f"codec config has unknown fields {sorted(unknown)} (written by a newer version?)")
        return cls(**data)


def seanet_modules():
    """``encodec.modules`` (SEANetEncoder, SEANetDecoder), imported without running ``encodec/__init__.py``.

    That file builds the whole EnCodec model and so imports torchaudio, whose compiled extension fails to load beside
    a torch it was not built for (torchaudio 2.11.1 beside torch 2.13: "Could not load this library:
    .../torchaudio/lib/_torchaudio.so"): in a fresh ``pip install``/``pipx install`` venv that took the bundled codec,
    and so the app's model, down. The SEANet layers need torch only. Same classes either way; when encodec is already
    imported (Meta's codec, ``encodec-24khz``) its own package is used."""
    if "encodec.modules" in sys.modules:
        return sys.modules["encodec.modules"]
    if "encodec" not in sys.modules:
        spec = importlib.util.find_spec("encodec")
        if spec is not None and spec.submodule_search_locations is not None:
            package = importlib.util.module_from_spec(spec)  # the package's namespace, its __init__ not run
            sys.modules["encodec"] = package
            try:
                __import__("encodec.modules")
            finally:  # a later `import encodec` (Meta's codec) runs the real __init__, which reuses encodec.modules
                if sys.modules.get("encodec") is package:
                    del sys.modules["encodec"]
            return sys.modules["encodec.modules"]
    import encodec.modules

    return encodec.modules


class CodecModel(nn.Module):
    """Encoder + decoder as one trainable module."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        seanet = seanet_modules()
        SEANetEncoder, SEANetDecoder = seanet.SEANetEncoder, seanet.SEANetDecoder

        self.config = config
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # encodec uses the old weight_norm API
            learned = config.learned_dims
            self.emb_norm = (nn.BatchNorm1d(learned, eps=config.emb_norm_eps, affine=False, momentum=0.01)
                             if config.emb_norm else None)
            self.encoder = SEANetEncoder(channels=1, dimension=learned, n_filters=config.enc_filters,
                                         ratios=list(config.ratios), lstm=config.enc_lstm, causal=False)
            if config.arch == "harmonic":
                self.decoder = HarmonicDecoder(config.dim, config.hop_length, config.sample_rate, hidden=config.hidden,
                                               n_blocks=config.n_blocks, n_harmonics=config.n_harmonics,
                                               n_noise_bands=config.n_noise_bands, midi_min=config.midi_min,
                                               midi_max=config.midi_max, noise_seed=config.noise_seed,
                                               f0_bins_per_semitone=config.f0_bins_per_semitone,
                                               f0_from_feature=config.pitch_feature,
                                               feature_dims=config.pitch_feature_dims,
                                               loudness_dim=config.loudness_dim, fine_env=config.fine_env,
                                               noise_init_db=config.noise_init_db,
                                               amp_correction_db=config.amp_correction_db,
                                               onset_fill=config.onset_fill, harm_prior=config.harm_prior)
            elif config.arch == "seanet":
                self.decoder = SEANetDecoder(channels=1, dimension=config.dim, n_filters=config.dec_filters,
                                             ratios=list(config.ratios), lstm=config.dec_lstm, causal=False)
            else:
                raise CodecError(f"unknown codec arch {config.arch!r} (harmonic or seanet)")

    frozen_encoder = False

    def freeze_encoder(self) -> None:
        """Fix the encoder and the embedding BatchNorm's statistics: training then changes only the decoder.

        Why: the VAE, the generators and every embedding cache are trained on what ``encode`` writes; a decoder
        fine-tuned behind a frozen encoder improves the sound without invalidating any of them (``encode`` stays
        bit-identical). The flag survives ``train()`` calls, which would otherwise put the BatchNorm back on batch
        statistics."""
        self.frozen_encoder = True
        for param in self.encoder.parameters():
            param.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "CodecModel":
        super().train(mode)
        if self.frozen_encoder:
            self.encoder.eval()
            if self.emb_norm is not None:
                self.emb_norm.eval()
        return self

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, S]`` (S a multiple of the hop) -> ``emb[B, T, D]``."""
        emb = self.encoder(wave[:, None])
        if self.emb_norm is not None:
            emb = self.emb_norm(emb)
        emb = emb.transpose(1, 2)
        emb = torch.tanh(emb) if self.config.emb_tanh else emb
        cfg = self.config
        if cfg.loudness_feature:
            from synth.codec.loudness import loudness_feature

            emb = torch.cat([emb, loudness_feature(wave, cfg.hop_length)[:, : emb.shape[1]]], dim=-1)
        if cfg.pitch_feature:
            from synth.dsp.pitch import pitch_feature

            feat = pitch_feature(wave, cfg.sample_rate, cfg.hop_length, dims=cfg.pitch_feature_dims, win=cfg.yin_win,
                                 fmin=cfg.yin_fmin, fmax=cfg.yin_fmax)
            emb = torch.cat([emb, feat], dim=-1)
        return emb

    def decode(self, emb: torch.Tensor, f0_hz: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """``emb[B, T, D]`` -> ``(wave[B, T*hop], controls)``; controls are empty for the SEANet decoder."""
        if self.config.arch == "harmonic":
            return self.decoder(emb, f0_hz)
        return self.decoder(emb.transpose(1, 2))[:, 0], {}


class BundledCodec(Codec):
    """The trained codec behind the ``Codec`` contract."""

    def __init__(self, config: CodecConfig, model: CodecModel | None = None):
        self.config = config
        self.model = (model or CodecModel(config)).eval()
        self.name = config.name
        self.sample_rate = config.sample_rate
        self.hop_length = config.hop_length
        self.dim = config.dim

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> "BundledCodec":
        self.model.to(device)
        return self

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model.encode(self.pad_to_frames(wave.to(self.device, torch.float32)))

    @torch.inference_mode()
    def decode(self, emb: torch.Tensor) -> torch.Tensor:
        return self.model.decode(emb.to(self.device, torch.float32))[0]

    @torch.inference_mode()
    def decode_from(self, emb: torch.Tensor, start: int) -> torch.Tensor:
        """The samples of ``decode(emb)`` from frame ``start`` on (``[B, (T - start) * hop]``); the harmonic decoder
        synthesizes only those (the same samples), other decoders decode everything and cut."""
        emb = emb.to(self.device, torch.float32)
        if self.config.arch == "harmonic":
            return self.model.decoder.decode_from(emb, int(start))
        return self.model.decode(emb)[0][:, int(start) * self.hop_length:]

    @torch.inference_mode()
    def controls(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """Synthesis controls of the harmonic decoder (f0_midi, amp, harm, noise); for inspection and eval."""
        if self.config.arch != "harmonic":
            raise CodecError("only the harmonic codec has synthesis controls")
        return self.model.decoder.controls(emb.to(self.device, torch.float32))

    def describe(self) -> dict:
        return {**super().describe(), "arch": self.config.arch}

    def save(self, folder: str | Path) -> Path:
        return save_codec(self.model, folder)


def save_codec(model: CodecModel, folder: str | Path) -> Path:
    """Write ``config.json`` + ``codec.pt`` (float32 state_dict) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(model.config.to_json() + "\n")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_torch(state, folder / WEIGHTS_FILE)
    return folder


def load_bundled(folder: str | Path, device: str | torch.device = "cpu") -> BundledCodec:
    """Load a codec folder; raise ``CodecError`` saying what is missing or wrong."""
    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise CodecError(f"{folder} is not a codec folder: it needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    config = CodecConfig.from_dict(json.loads(cfg_path.read_text()))
    if config.format_version > FORMAT_VERSION:
        raise CodecError(f"{folder}: codec format {config.format_version} is newer than this code ({FORMAT_VERSION})")
    model = CodecModel(config)
    state = torch.load(w_path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CodecError(f"{w_path} does not match {cfg_path}: {exc}") from exc
    return BundledCodec(config, model).to(device)
