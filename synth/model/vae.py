"""Stage 1: a VAE whose 2D latent is the timbre map (the XY pad).

Why this shape: the encoder sees a whole note ``[T, D]`` of standardized codec embeddings and must say *which
instrument* plays, not *which pitch*; the decoder gets the pitch as a one-hot, so the encoder has no reason to put
pitch into z (and the losses in ``losses.py`` push it out). With ``velocity_cond`` the decoder also gets the
velocity, as a one-hot of the nearest of ``velocity_layers`` (the dataset's layers): how hard a note is struck is a
property of the note, not of the instrument, so like the pitch it is handed to the decoder and kept out of z. Output heads are plain linear layers: no norm,
activation or dropout after an output (a pitfall of the authors' prototype, see MODEL.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from synth.atomic import save_torch
from synth.model.configio import JsonConfig


@dataclass
class VAEConfig(JsonConfig):
    """Everything that defines a VAE run; saved as JSON beside the state_dict so a run can be rebuilt exactly."""

    # data shape
    num_frames: int = 300  # T: 4 s at 75 frames/s; inputs are cropped / zero-padded to this
    dim: int = 128  # D: codec embedding size
    pitch_min: int = 48
    pitch_max: int = 72  # inclusive (the wide dataset: --set pitch_min=21 --set pitch_max=108)
    # velocity as a decoder condition (issue 18): a one-hot of the nearest layer of velocity_layers, concatenated to
    # z and the pitch one-hot (= a learned embedding per layer in the decoder's first linear layer). Layers, not a
    # scalar: the data has exactly these layers, and SoundFonts switch samples by velocity (a step, not a line), which
    # a per-layer code fits and a linear scalar does not; it also matches the flow model's velocity_layers, so the
    # engine treats every model alike (nearest layer / crossfade of the two nearest). False (the default, and every
    # config written before this field) = no velocity input: the architecture and outputs of older models.
    velocity_cond: bool = False
    velocity_layers: tuple[int, ...] = (40, 70, 100, 127)
    num_instruments: int = 0  # classes of the instrument classifier (training instruments), set from data
    num_families: int = 11  # classes of the family classifier (synth.data.families.FAMILIES)
    # network
    time_pool: int = 4  # average-pool the input over time by this factor first (CPU budget); decoder upsamples back
    enc_channels: tuple[int, ...] = (128, 64, 32)  # strided convs, kernel 5, stride 2 (authors: 256,128,64; CPU budget)
    pool_bins: int = 8  # adaptive average pool over time to this many bins before the MLP (keeps the envelope)
    hidden: int = 256  # MLP width
    latent_dim: int = 2
    # trailing embedding dims the ENCODER does not see: the codec's explicit pitch feature (the harmonic codec's
    # last dim is YIN pitch). Handing the encoder the pitch outright invites pitch into z; the decoder still
    # reconstructs these dims from its pitch input.
    enc_skip_dims: int = 0
    cls_hidden: int = 64  # hidden width of the classifiers on z
    # loss weights (see losses.py for what each term does)
    w_rec: float = 1.0
    w_kl: float = 0.01  # also centres the map (proxy: 1e-3 let it drift off-centre)
    w_reg: float = 30.0  # must match the repulsion pressure (w_nei * w_rep) or the map leaves the disk
    w_nei: float = 30.0  # tuned on a log-mel proxy of the SoundFont set (held-out ratio 45 -> 184 over w_nei 1 -> 30)
    w_pitch: float = 0.1
    w_inst: float = 0.5
    w_fam: float = 0.5
    a_fam: float = 1.0  # family weight (1-gamma)^a_fam: coarse clusters first
    a_inst: float = 1.0  # instrument weight gamma^a_inst
    a_nei: float = 0.5  # neighbour weight gamma^a_nei
    margin: float = 0.4  # M: different instruments closer than this repel
    w_rep: float = 3.0  # weight of the repulsion inside the neighbour term (nei = attract + w_rep * repel)
    attract_power: float = 1.0  # attraction = mean distance^p over same-instrument pairs (see losses.neighbour_loss)
    radius: float = 1.0  # spatial regularizer: mu outside this disk is penalized
    beta: float = 0.1  # z = mu + sigma * eps * beta
    # ablations (a config switch away, issue 4)
    no_kl: bool = False
    no_reg: bool = False
    no_nei: bool = False
    no_fam: bool = False
    # optimisation
    lr: float = 6e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    batch_size: int = 512
    notes_per_instrument: int = 8  # batches are groups of this many notes of one instrument (neighbour loss)
    epochs: int = 80  # authors: 300; 80 fits this CPU (~15 s/epoch for ~8k notes on one thread)
    warmup_epochs: int = 5
    seed: int = 0

    # Retired experiment options, with the value that switched each off (synth.model.configio: a config holding one
    # at that value loads, at any other value it is refused). Each was measured on the held-out ratio and did not
    # help (models/default/MODEL_CARD.md, "Retired experiments"; the code is in git history):
    RETIRED: ClassVar[dict[str, Any]] = {
        "repel_centroids": False,  # repel instruments' batch centroids, not their notes (session 3: 91 vs 94)
        "decode_instrument_mean": False,  # decode every note from its instrument's batch-mean point (91 / 87)
        "mix_groups": 0.0,  # instrument mixup: pseudo-instruments blended from two (session 4: 81)
        "mix_lambda": (0.25, 0.75),  # mixup's blend weight range
        "con_dim": 0,  # supervised contrastive term: the projection head's size (session 4: 85 at w_con 1 and 10)
        "con_temperature": 0.1,  # its softmax temperature
        "w_con": 0.0,  # its weight
    }

    @property
    def num_pitches(self) -> int:
        return self.pitch_max - self.pitch_min + 1


def fit_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Crop or zero-pad ``[B, T, D]`` along time to ``num_frames`` (zero = the mean in standardized units)."""
    t = x.shape[1]
    if t == num_frames:
        return x
    if t > num_frames:
        return x[:, :num_frames]
    return F.pad(x, (0, 0, 0, num_frames - t))


DEFAULT_VELOCITY = 100  # the velocity of notes given none (and of every note of a dataset without layers)


def velocity_index(layers: tuple[int, ...], velocity: torch.Tensor | None, batch: int, device=None) -> torch.Tensor:
    """Index of the nearest of ``layers`` for each row ``[B]`` (None = 100 everywhere; ties go to the lower layer,
    as in ``synth.model.flow.velocity_index``)."""
    lay = torch.tensor(tuple(int(v) for v in layers), device=device)
    if velocity is None:
        velocity = torch.full((batch,), DEFAULT_VELOCITY, device=device)
    v = torch.as_tensor(velocity, device=device).reshape(-1).to(lay.dtype)
    if v.shape[0] != batch:
        raise ValueError(f"{v.shape[0]} velocities for {batch} notes")
    return (v[:, None] - lay[None, :]).abs().argmin(dim=1)


class TimbreVAE(nn.Module):
    """Conv encoder ``[B,T,D] -> (mu, logvar)[B,2]``; decoder ``(z, pitch[, velocity]) -> [B,T,D]``; heads for the
    losses. The encoder never sees pitch or velocity."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.velocity_cond and not cfg.velocity_layers:
            raise ValueError("velocity_cond needs at least one velocity layer")
        t_in = -(-cfg.num_frames // cfg.time_pool)
        # encoder: strided convs, kernel 5, stride 2
        layers: list[nn.Module] = []
        c_prev = cfg.dim - cfg.enc_skip_dims
        for c in cfg.enc_channels:
            layers += [nn.Conv1d(c_prev, c, 5, stride=2, padding=2), nn.GELU()]
            c_prev = c
        self.enc_conv = nn.Sequential(*layers)
        self.enc_pool = nn.AdaptiveAvgPool1d(cfg.pool_bins)
        self.enc_mlp = nn.Sequential(
            nn.Linear(c_prev * cfg.pool_bins, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU()
        )
        self.to_mu = nn.Linear(cfg.hidden, cfg.latent_dim)  # plain linear output heads
        self.to_logvar = nn.Linear(cfg.hidden, cfg.latent_dim)
        # decoder: MLP to a coarse time grid, then transposed convs doubling time each
        n_up = len(cfg.enc_channels)
        self.dec_t0 = -(-t_in // (2**n_up))
        self.t_in = t_in
        dec_channels = tuple(reversed(cfg.enc_channels))  # e.g. 64, 128, 256
        self.dec_c0 = dec_channels[0]
        self.num_velocity_inputs = len(cfg.velocity_layers) if cfg.velocity_cond else 0
        self.dec_mlp = nn.Sequential(
            nn.Linear(cfg.latent_dim + cfg.num_pitches + self.num_velocity_inputs, cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.hidden, self.dec_c0 * self.dec_t0),
            nn.GELU(),
        )
        up: list[nn.Module] = []
        c_prev = self.dec_c0
        for c in dec_channels:
            up += [nn.ConvTranspose1d(c_prev, c, 4, stride=2, padding=1), nn.GELU()]
            c_prev = c
        self.dec_up = nn.Sequential(*up)
        self.dec_out = nn.Conv1d(c_prev, cfg.dim, 5, padding=2)  # plain linear output (a conv is linear)
        # classifier heads
        h = cfg.cls_hidden
        self.inst_head = nn.Sequential(nn.Linear(cfg.latent_dim, h), nn.GELU(), nn.Linear(h, max(1, cfg.num_instruments)))
        self.fam_head = nn.Sequential(nn.Linear(cfg.latent_dim, h), nn.GELU(), nn.Linear(h, cfg.num_families))
        # pitch classifier on the INPUT embedding (not on z): see losses.pitch_loss for why it exists
        self.pitch_head = nn.Sequential(
            nn.Conv1d(cfg.dim, 64, 5, stride=2, padding=2),
            nn.GELU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(64, cfg.num_pitches),
        )

    # -- helpers -------------------------------------------------------------------------------------------------
    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        """``[B,T,D]`` -> ``[B,D,T']``: crop/pad to T, optional time pooling."""
        x = fit_frames(x, self.cfg.num_frames).transpose(1, 2)
        if self.cfg.time_pool > 1:
            x = F.avg_pool1d(x, self.cfg.time_pool, ceil_mode=True)
        return x

    def pitch_onehot(self, pitch: torch.Tensor) -> torch.Tensor:
        idx = (pitch.long() - self.cfg.pitch_min).clamp(0, self.cfg.num_pitches - 1)
        return F.one_hot(idx, self.cfg.num_pitches).float()

    def velocity_onehot(self, velocity: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``[B, len(velocity_layers)]`` one-hot of the nearest layer (``[B, 0]`` without ``velocity_cond``)."""
        if not self.cfg.velocity_cond:
            return torch.zeros(batch, 0)
        idx = velocity_index(self.cfg.velocity_layers, velocity, batch, self.dec_out.weight.device)
        return F.one_hot(idx, self.num_velocity_inputs).float()

    def decoder_condition(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None) -> torch.Tensor:
        """The decoder MLP's input: ``[z, pitch one-hot(, velocity one-hot)]``."""
        parts = [z, self.pitch_onehot(pitch)]
        if self.cfg.velocity_cond:
            parts.append(self.velocity_onehot(velocity, z.shape[0]).to(z.dtype))
        return torch.cat(parts, dim=1)

    # -- the contract ----------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_prepped(self._prep(x))

    def decode(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None = None) -> torch.Tensor:
        """Frames ``[B, T, D]`` for points ``z`` ``[B, 2]``, MIDI ``pitch`` ``[B]`` and MIDI ``velocity`` ``[B]``
        (None = 100; ignored by a VAE without ``velocity_cond``)."""
        y = self.decode_coarse(z, pitch, velocity)
        if self.cfg.time_pool > 1:
            y = F.interpolate(y, scale_factor=self.cfg.time_pool, mode="linear", align_corners=False)
        y = y[:, :, : self.cfg.num_frames]
        return y.transpose(1, 2)

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        """Public form of the input preparation: training pre-pools the whole dataset once with it."""
        return self._prep(x)

    def encode_prepped(self, xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder on a prepared input ``[B, D, T/time_pool]``."""
        return self._posterior(self.encode_hidden(xp))

    def _posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) from the encoder's last hidden layer: the two plain linear heads."""
        return self.to_mu(h), self.to_logvar(h)

    def encode_hidden(self, xp: torch.Tensor) -> torch.Tensor:
        """The encoder's last hidden layer ``[B, hidden]`` (before the mu / logvar heads)."""
        if self.cfg.enc_skip_dims:
            xp = xp[:, : self.cfg.dim - self.cfg.enc_skip_dims]
        return self.enc_mlp(self.enc_pool(self.enc_conv(xp)).flatten(1))

    def decode_coarse(
        self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decoder output at the pooled time resolution ``[B, D, T/time_pool]`` (the training target's grid)."""
        h = self.dec_mlp(self.decoder_condition(z, pitch, velocity))
        h = h.view(z.shape[0], self.dec_c0, self.dec_t0)
        y = self.dec_out(self.dec_up(h))  # [B, D, t0 * 2^n]
        return y[:, :, : self.t_in]

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps * beta (the paper's sampling); deterministic mu in eval mode."""
        if not self.training or self.cfg.beta == 0:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) * self.cfg.beta

    def pitch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pitch classifier on the input embedding ``[B, T, D]`` (independent of z)."""
        return self.pitch_head(self._prep(x))

    def forward(
        self, xp: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training pass on a PREPARED input ``xp = prep(x)`` ``[B, D, T']``; ``recon`` is on the same grid.

        ``velocity`` (MIDI, None = 100) is used only by the decoder, with ``cfg.velocity_cond``. The encoder sees
        ``xp`` alone."""
        mu, logvar = self.encode_prepped(xp)
        z = self.sample(mu, logvar)
        return {
            "mu": mu,
            "logvar": logvar,
            "z": z,
            "recon": self.decode_coarse(z, pitch, velocity),
            "inst_logits": self.inst_head(z),
            "fam_logits": self.fam_head(z),
            "pitch_logits": self.pitch_head(xp),
        }


def group_centroids(z: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean row of each distinct ``group`` label ``[K, L]``, each row's index into them ``[B]``)."""
    labels, inverse = torch.unique(group, return_inverse=True)
    k = len(labels)
    sums = z.new_zeros(k, z.shape[1]).index_add(0, inverse, z)
    counts = torch.bincount(inverse, minlength=k).to(z.dtype).unsqueeze(1)
    return sums / counts, inverse


def group_mean(z: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Each row replaced by the mean of the rows with the same ``group`` label (``[B, L]`` -> ``[B, L]``)."""
    centroids, inverse = group_centroids(z, group)
    return centroids[inverse]


def save_vae(model: TimbreVAE, out_dir: str | Path, name: str = "vae") -> None:
    """``<name>.pt`` (state_dict) + ``<name>.json`` (config) side by side."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_torch(model.state_dict(), out / f"{name}.pt")
    model.cfg.save(out / f"{name}.json")


def load_vae(path: str | Path, name: str = "vae", map_location: str | torch.device = "cpu") -> TimbreVAE:
    """Load from a run folder (``vae.json`` + ``vae.pt``) with weights_only state_dicts (never pickled modules)."""
    p = Path(path)
    cfg = VAEConfig.load(p / f"{name}.json")
    model = TimbreVAE(cfg)
    model.load_state_dict(torch.load(p / f"{name}.pt", map_location=map_location, weights_only=True))
    model.eval()
    return model
