"""Stage 2, sampling: a conditional flow-matching (rectified flow) model over the codec frames of a whole note.

Why: the MSE generator (``generator.py``) outputs the average of what could follow, and averages are dull (issue 15).
A flow model learns to transport Gaussian noise to real notes, so each sample is one plausible note, not their mean;
classifier-free guidance (Ho & Salimans 2022; the spectrogram-diffusion seed samples with guidance 2) trades
diversity for adherence to the condition.

Public API (everything the engine / bundle needs)::

    from synth.model.flow import FlowConfig, FlowNet, load_flow, save_flow

    flow = load_flow("runs/flow/<run>")            # flow.json (FlowConfig) + flow.pt (EMA state_dict), eval mode
    frames = flow.generate(points, pitches, velocities=None, steps=None, guidance=None, sampler=None,
                           seed_points=True)       # -> float32 [B, T, D], STANDARDIZED codec frames
    nxt = flow.continue_(prev_frames, points, pitches, velocities=None, context=None, segment=1, ...)
                                                   # -> float32 [B, T - K, D]: the frames after prev_frames

Inputs and outputs:

- ``points``: ``[B, 2]`` timbre points of the frozen VAE's map (an instrument's point is the mean mu of its notes,
  see ``train_flow.instrument_points``); the model is conditioned on the exact point given. Non-finite points are
  refused with a ValueError.
- ``pitches``: MIDI ``[B]`` in ``[cfg.pitch_min, cfg.pitch_max]`` (default 21-108; outside raises ValueError).
- ``velocities``: MIDI ``[B]`` or None (= 100); each is mapped to the nearest of ``cfg.velocity_layers`` (a learned
  embedding per layer). Data with one layer is all velocity 100.
- Frames are in the embedding cache's standardized units (``(raw - mean) / std`` with the TRAIN statistics, the same
  ``stats`` the bundle ships): destandardize (``frames * std + mean``) before ``codec.decode``. ``T = cfg.num_frames``
  (300 = 4 s at 75 frames/s), ``D = cfg.dim`` (the codec's dim).
- ``steps`` (4-16), ``guidance`` (0 = unconditional model, 1 = plain conditional, >1 = extrapolate away from the
  unconditional output: more "character"), ``sampler`` ("euler": ``steps`` network calls; "heun": ``2*steps - 1``)
  default to ``cfg.sample_steps`` / ``cfg.guidance`` / ``cfg.sampler``. With guidance not 0 or 1 each call runs
  the conditional and unconditional rows as one doubled batch.
- "One point = one instrument": with ``seed_points=True`` (default) the initial noise of a row is ONE ``[T, D]``
  tensor drawn from a generator seeded by (``cfg.noise_seed``, the point quantized to ``cfg.seed_step``, the velocity
  layer, the segment index): every pitch of a point starts from the same noise (neighbouring keys sound like one
  instrument), and the same point always gives the same notes, on any device (the noise is drawn on the CPU): bit
  for bit in the same batch, to float rounding (~1e-6) in another batch composition (rows never mix).
  ``seed_step`` defaults to the engine's note-cache step (0.02), so one cache cell = one noise.
  ``seed_points=False`` draws fresh noise per row (from ``generator`` when given).
- Long notes: ``continue_`` takes the last ``K = context`` frames (default ``cfg.context_frames``) of the previous
  segment as clean context at the start of a new T-frame window and samples the rest; the context frames are
  reproduced exactly in the window (``return_window=True`` returns the whole window). Segments keep drawing
  point-seeded noise, one tensor per (point, layer, segment).

Loading: ``load_flow(run_dir)`` builds ``FlowNet(FlowConfig.load(run_dir / "flow.json"))`` and loads
``flow.pt`` with ``weights_only=True`` (a plain state_dict: the EMA weights the trainer keeps for sampling). A bundle
can store the same two files under any name (``load_flow(dir, name=...)``).

Network: the note is cut into patches of ``cfg.patch`` frames (one token each: 300 frames / 10 = 30 tokens), a
non-causal Transformer with a learned position per token (initialised sinusoidal) and adaLN-Zero conditioning
(DiT, Peebles & Xie 2023): the condition vector (flow time + point MLP + pitch embedding + velocity embedding, or
one learned null vector in place of point+pitch+velocity) scales and shifts every LayerNorm and gates every
residual branch. Each frame's input is its noisy value (or its clean context value) plus a mask channel that says
which frames are given context (inpainting-style conditioning, used by ``continue_``).

Convention: ``x_t = (1 - t) * noise + t * data`` with t from 0 (noise) to 1 (data); the network predicts the
velocity ``v = data - noise``; a sampler integrates dx/dt = v from t=0 to t=1.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from synth.atomic import save_torch
from synth.model.configio import JsonConfig

SAMPLERS = ("euler", "heun")
LAYER_NOISE = ("per_layer", "shared")  # FlowConfig.layer_noise


@dataclass
class FlowConfig(JsonConfig):
    # data shape
    num_frames: int = 300  # T: 4 s at 75 frames/s
    dim: int = 64  # D: codec embedding size
    pitch_min: int = 21
    pitch_max: int = 108  # inclusive: the piano range (the wide dataset grid samples 21-108)
    latent_dim: int = 2
    velocity_layers: tuple[int, ...] = (40, 70, 100, 127)  # the dataset's layers; 100 where the data has one
    # network (sized for the CPU budget: 25 notes, 8 Euler steps, guidance on, <= ~1 s on one thread; see
    # ``benchmark`` and ``python -m synth bench flow``)
    # Measured on this 2-core CPU, 1 thread, 25 notes, guidance on (50 rows a call), best of 5 while another job held
    # the other core (python -m synth bench flow --set ...): 8 Euler steps took 0.71 s at patch 10 / d 256 / 4 layers,
    # 1.11 s at patch 6, 1.03 s with 6 layers, 1.35 s at d 320, 1.12 s at patch 5 / d 192. Patch 10 keeps 8 steps
    # (and Heun at 4) inside ~1 s with room for a busy machine. A token's output has rank d_model (256 < 10 x 64
    # values): fine for the data estimate, which is smooth over 133 ms; the noise part goes through ``skip``.
    patch: int = 10  # frames per token: 300 frames -> 30 tokens
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.0
    # sampling defaults (arguments of generate override them)
    sample_steps: int = 8
    sampler: str = "euler"
    guidance: float = 2.0  # the spectrogram-diffusion paper samples with 2.0 after a sweep
    time_shift: float = 1.0  # >1 spends more of the step grid near the noise end (t' = s t / (1 + (s - 1) t))
    seed_step: float = 0.02  # point quantization of the noise seed (= the engine's note-cache step)
    # spacing of the noise lattice on the map: a point's noise blends the 4 lattice noises around it (bilinear weights,
    # renormalized to unit variance), so nearby points start from nearby noise and the timbre moves smoothly under a
    # drag. 0 = one independent noise per seed_step cell (session 5: neighbouring cells sounded unrelated).
    noise_lattice: float = 0.25
    # "per_layer": each velocity layer of a point starts from its own noise; "shared": every layer starts from the
    # noise of the layer nearest velocity 100, so soft and hard notes of a point are one instrument played at two
    # dynamics (the velocity condition alone makes the difference; measured by ``synth eval velocity``)
    layer_noise: str = "per_layer"
    noise_seed: int = 0
    context_frames: int = 75  # K of continue_ by default (1 s)
    # training
    p_uncond: float = 0.1  # condition dropout for classifier-free guidance (the paper's 0.1)
    p_context: float = 0.25  # share of examples trained as continuations (first K frames given)
    context_min: int = 15
    context_max: int = 150
    # continuation examples start at a random offset in the note (0..context_shift_max frames; the window is padded
    # by repeating the note's last frame): the context is then sometimes held sound, not always the attack, which is
    # what continue_ is given when a held note grows.
    context_shift_max: int = 150
    # t sampling: logit-normal (SD3: best of the rectified-flow schedules; it trains the middle of the path, where
    # the prediction is hardest) mixed with a share of uniform t, because a few-step sampler evaluates the net at
    # t = 0, 1/k, ...: logit-normal(0, 1) puts only ~0.2% of its mass below t = 0.05, and the first step (t = 0),
    # which sets the whole note's layout, would be barely trained. Loss: plain MSE on v (no extra weighting): in
    # v-space each t already weighs the error the sampler integrates.
    t_sampling: str = "logit_normal"  # or "uniform"
    t_mean: float = 0.0
    t_std: float = 1.0
    t_uniform_share: float = 0.2
    cond_noise: float = 0.02  # N(0, sigma) on the training points: nearby points must give nearby notes
    # Onset weighting (session 11): the loss of a note's first ``onset_frames`` frames counts ``onset_weight`` times.
    # Why: plain MSE spreads the loss over 300 frames, and the 1-2 frames of a strike carried too little of it: the
    # flow wrote plucked and struck onsets as a ramp (loudness channel at frames 0/1 -16/-8 dB re frame 7 against the
    # real notes' -3/+1; independent of sampler, steps and guidance, so learned), which the codec plays as a 60-70 ms
    # swell where the real note rises in 3-7 ms. 1.0 = off.
    onset_frames: int = 0
    onset_weight: float = 1.0
    # Velocity balance (session 11): a training note is drawn with weight (notes in its velocity layer) ** -balance.
    # The wide dataset holds 13.5k notes at velocity 100 and ~2.1k in each other layer; 0 = uniform over notes (the
    # layers seen in proportion), 1 = every layer equally often.
    velocity_balance: float = 0.0
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    batch_size: int = 64
    # length of the cosine schedule (training may stop earlier and resume later; a resume may lengthen it). One step
    # (batch 64) takes 0.33 s on one thread of this CPU: 40k steps ~ 3.7 h here, minutes on a GPU.
    total_steps: int = 40000
    warmup_steps: int = 1000
    ema_decay: float = 0.999
    seed: int = 0

    def __post_init__(self) -> None:
        self.velocity_layers = tuple(int(v) for v in self.velocity_layers)
        self.betas = tuple(self.betas)  # type: ignore[assignment]

    @property
    def num_pitches(self) -> int:
        return self.pitch_max - self.pitch_min + 1

    @property
    def num_tokens(self) -> int:
        return -(-self.num_frames // self.patch)

    def validate(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r}: one of {', '.join(SAMPLERS)}")
        if self.t_sampling not in ("logit_normal", "uniform"):
            raise ValueError(f"t_sampling {self.t_sampling!r}: logit_normal or uniform")
        if not 0 < self.context_min <= self.context_max < self.num_frames:
            raise ValueError(f"need 0 < context_min <= context_max < num_frames ({self.context_min}, "
                             f"{self.context_max}, {self.num_frames})")
        if not 0 < self.context_frames < self.num_frames:
            raise ValueError(f"context_frames {self.context_frames} must be 1..{self.num_frames - 1}")
        if self.pitch_max < self.pitch_min or not self.velocity_layers:
            raise ValueError("empty pitch range or no velocity layers")
        if not (math.isfinite(self.noise_lattice) and self.noise_lattice >= 0):
            raise ValueError(f"noise_lattice {self.noise_lattice}: a finite spacing >= 0 (0 = one noise per cell)")
        if self.sample_steps < 1:
            raise ValueError(f"sample_steps {self.sample_steps}: at least 1")
        for name in ("guidance", "time_shift", "seed_step"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= (0 if name == "guidance" else 1e-9)):
                raise ValueError(f"{name} {value}: a finite number{' >= 0' if name == 'guidance' else ' > 0'}")
        if self.onset_frames < 0 or not (math.isfinite(self.onset_weight) and self.onset_weight > 0):
            raise ValueError(f"onset_frames {self.onset_frames} / onset_weight {self.onset_weight}: frames >= 0, "
                             "a finite weight > 0")
        if not (math.isfinite(self.velocity_balance) and 0 <= self.velocity_balance <= 1):
            raise ValueError(f"velocity_balance {self.velocity_balance}: a number in [0, 1]")
        if self.layer_noise not in LAYER_NOISE:
            raise ValueError(f"layer_noise {self.layer_noise!r}: one of {', '.join(LAYER_NOISE)}")


# -- conditioning helpers ------------------------------------------------------------------------------------------
def velocity_index(cfg: FlowConfig, velocity: torch.Tensor | None, batch: int, device=None) -> torch.Tensor:
    """Index of the nearest velocity layer per row ``[B]`` (None = 100 everywhere)."""
    layers = torch.tensor(cfg.velocity_layers, device=device)
    if velocity is None:
        velocity = torch.full((batch,), 100, device=device)
    v = torch.as_tensor(velocity, device=device).reshape(-1).to(layers.dtype)
    return (v[:, None] - layers[None, :]).abs().argmin(dim=1)


def _seed_of(*parts: int) -> int:
    text = ":".join(str(int(p)) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def point_noise(cfg: FlowConfig, points: torch.Tensor, layers: torch.Tensor, segment: int = 0) -> torch.Tensor:
    """The initial noise ``[B, T, D]`` (CPU, float32) of every row, a function of (point quantized to
    ``seed_step``, velocity layer unless ``cfg.layer_noise`` is "shared", segment): all pitches of a point share it
    and the same point always gets the same noise. With ``noise_lattice`` > 0 it is a smooth function of the point (see FlowConfig.noise_lattice)."""
    pts = torch.round(points.detach().cpu().double() / cfg.seed_step) * cfg.seed_step
    # "shared": every layer takes the noise of the layer nearest velocity 100 (the most played one), so its notes are
    # the same in both modes
    shared = min(range(len(cfg.velocity_layers)), key=lambda i: abs(cfg.velocity_layers[i] - 100))
    lay = [int(v) if cfg.layer_noise == "per_layer" else shared for v in layers.detach().cpu().tolist()]
    lattice: dict[tuple, torch.Tensor] = {}

    def node(ix: int, iy: int, layer: int) -> torch.Tensor:
        key = (ix, iy, layer)
        if key not in lattice:
            g = torch.Generator().manual_seed(_seed_of(cfg.noise_seed, ix, iy, layer, segment))
            lattice[key] = torch.randn(cfg.num_frames, cfg.dim, generator=g, dtype=torch.float64)
        return lattice[key]

    rows = []
    done: dict[tuple, torch.Tensor] = {}  # (point, layer) -> its row: pitches of one point share it
    for (x, y), layer in zip(pts.tolist(), lay):
        if (x, y, layer) in done:
            rows.append(done[(x, y, layer)])
            continue
        if cfg.noise_lattice <= 0:
            rows.append(node(round(x / cfg.seed_step), round(y / cfg.seed_step), layer))
            continue
        u, v = x / cfg.noise_lattice, y / cfg.noise_lattice
        x0, y0 = math.floor(u), math.floor(v)
        fx, fy = u - x0, v - y0
        mix = torch.zeros(cfg.num_frames, cfg.dim, dtype=torch.float64)
        norm = 0.0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if w > 0:
                mix += w * node(x0 + dx, y0 + dy, layer)
                norm += w * w
        rows.append(mix / math.sqrt(norm))  # independent unit-variance nodes: the blend keeps unit variance
        done[(x, y, layer)] = rows[-1]
    return torch.stack(rows).float() if rows else torch.zeros(0, cfg.num_frames, cfg.dim)


def time_grid(steps: int, shift: float = 1.0) -> list[float]:
    """``steps + 1`` times from 0 (noise) to 1 (data); ``shift > 1`` puts more of them near the noise end."""
    ts = [i / steps for i in range(steps + 1)]
    if shift != 1.0:  # SD3's shift on the noise level u = 1 - t: u' = s u / (1 + (s - 1) u)
        ts = [1.0 - shift * (1 - t) / (1 + (shift - 1) * (1 - t)) for t in ts]
    return ts


def sinusoid(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``[B]`` -> ``[B, dim]`` sinusoidal features (t in [0, 1] scaled by 1000, as in DDPM timestep embeddings)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


def _sinusoid_positions(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float32)[None]
    ang = pos / (10000 ** (i / d))
    out = torch.zeros(n, d)
    out[:, 0::2] = torch.sin(ang)
    out[:, 1::2] = torch.cos(ang)
    return out


# -- network -------------------------------------------------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm Transformer block (full attention) with adaLN-Zero: shift/scale/gate from the condition."""

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        d = cfg.d_model
        self.h = cfg.n_heads
        self.ln1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        f = cfg.ff_mult * d
        self.mlp = nn.Sequential(nn.Linear(d, f), nn.GELU(approximate="tanh"), nn.Linear(f, d))
        self.mod = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.mod.weight)  # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.mod.bias)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.mod(c)[:, None].chunk(6, dim=2)
        h = self.ln1(x) * (1 + sc1) + sh1
        q, k, v = self.qkv(h).view(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + g1 * self.proj(y.transpose(1, 2).reshape(b, n, d))
        h = self.ln2(x) * (1 + sc2) + sh2
        return x + g2 * self.mlp(h)


class FlowNet(nn.Module):
    """The velocity network ``v(x_t, t | point, pitch, velocity, context)`` and its samplers."""

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d, p = cfg.d_model, cfg.patch
        self.in_proj = nn.Linear(p * (cfg.dim + 1), d)  # per frame: value + context-mask channel
        self.pos = nn.Parameter(_sinusoid_positions(cfg.num_tokens, d) * 0.1)
        self.t_mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        # the 2D point through an MLP (a linear map of 2 numbers spans only a plane of condition space)
        self.point_mlp = nn.Sequential(nn.Linear(cfg.latent_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.pitch_emb = nn.Embedding(cfg.num_pitches, d)
        self.vel_emb = nn.Embedding(len(cfg.velocity_layers), d)
        self.null = nn.Parameter(torch.zeros(d))  # the dropped condition (point + pitch + velocity) for CFG
        self.cond_in = nn.Linear(d, d)  # the condition also added to every token (cheap; helps early training)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mod_f = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, p * cfg.dim)
        # A per-dim coefficient (from the flow time and condition) times x_t, added to the output. The token output
        # has rank d (< patch * dim values per token), so alone it cannot express the full-rank noise part of the
        # velocity (v = data - noise: at t = 0 the net must output -noise); this skip can (coefficient -1 at t = 0,
        # -1 / (1 - t) later), leaving the Transformer the data estimate, which is smooth over a patch.
        self.skip = nn.Linear(d, cfg.dim)
        for m in (self.mod_f, self.out, self.skip):  # zero output: the net starts predicting v = 0
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.normal_(self.pitch_emb.weight, std=0.02)
        nn.init.normal_(self.vel_emb.weight, std=0.02)

    # -- shapes ----------------------------------------------------------------------------------------------------
    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        s, p = self.cfg.num_tokens, self.cfg.patch
        if t < s * p:
            x = F.pad(x, (0, 0, 0, s * p - t))
        return x.reshape(b, s, p * c)

    def _frames(self, y: torch.Tensor) -> torch.Tensor:
        b = y.shape[0]
        return y.reshape(b, -1, self.cfg.dim)[:, : self.cfg.num_frames]

    # -- condition -------------------------------------------------------------------------------------------------
    def check_condition(self, points: torch.Tensor, pitches: torch.Tensor) -> None:
        """Refuse what the network cannot mean: non-finite or mis-shaped points, pitches outside the range."""
        if points.ndim != 2 or points.shape[1] != self.cfg.latent_dim:
            raise ValueError(f"points must be [B, {self.cfg.latent_dim}], got {tuple(points.shape)}")
        if not bool(torch.isfinite(points).all()):
            raise ValueError("the timbre point must be finite (got NaN or inf): nothing to condition on")
        if pitches.shape[0] != points.shape[0]:
            raise ValueError(f"{points.shape[0]} points but {pitches.shape[0]} pitches")
        if len(pitches) and (int(pitches.min()) < self.cfg.pitch_min or int(pitches.max()) > self.cfg.pitch_max):
            raise ValueError(f"pitches must lie in MIDI {self.cfg.pitch_min}-{self.cfg.pitch_max}")

    def condition(self, points: torch.Tensor, pitch_idx: torch.Tensor, vel_idx: torch.Tensor,
                  drop: torch.Tensor | None) -> torch.Tensor:
        """``[B, d]``: point MLP + pitch + velocity embedding; rows where ``drop`` is True get the null vector."""
        c = self.point_mlp(points.float()) + self.pitch_emb(pitch_idx) + self.vel_emb(vel_idx)
        if drop is not None:
            c = torch.where(drop[:, None], self.null.to(c.dtype).expand_as(c), c)
        return c

    # -- the velocity field ----------------------------------------------------------------------------------------
    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        points: torch.Tensor,
        pitch_idx: torch.Tensor,
        vel_idx: torch.Tensor,
        drop: torch.Tensor | None = None,
        ctx_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity ``[B, T, D]`` at ``x_t`` ``[B, T, D]``, time ``t`` ``[B]``. ``pitch_idx`` / ``vel_idx`` are
        indices (``pitch - pitch_min``, ``velocity_index``); ``drop`` ``[B]`` bool selects the null condition;
        ``ctx_mask`` ``[B, T]`` (1 = clean context frame, already placed in ``x_t``) or None."""
        b, t_len, _ = x_t.shape
        m = x_t.new_zeros(b, t_len, 1) if ctx_mask is None else ctx_mask.to(x_t.dtype)[:, :, None]
        h = self.in_proj(self._patches(torch.cat([x_t, m], dim=2)))
        c = self.t_mlp(sinusoid(t, 256).to(h.dtype)) + self.condition(points, pitch_idx, vel_idx, drop)
        h = h + self.pos[: h.shape[1]] + self.cond_in(c)[:, None]
        c = F.silu(c)
        for blk in self.blocks:
            h = blk(h, c)
        sh, sc = self.mod_f(c)[:, None].chunk(2, dim=2)
        return self._frames(self.out(self.ln_f(h) * (1 + sc) + sh)) + self.skip(c)[:, None] * x_t

    def guided_velocity(self, x, t, points, pitch_idx, vel_idx, guidance: float, ctx_mask=None,
                        shared_uncond: bool = False) -> torch.Tensor:
        """``v_u + guidance * (v_c - v_u)``. Guidance 1 runs only the conditional rows, 0 only the unconditional
        ones (exactly the unguided outputs); otherwise both, as one batch of 2B rows. ``shared_uncond``: every row
        has the same ``x`` and ``t`` and no context (the first step from one point's noise), so every row's
        unconditional velocity (the null condition drops point, pitch and velocity) is the same: it is computed
        once (B + 1 rows)."""
        b = x.shape[0]
        if guidance == 1.0:
            return self(x, t, points, pitch_idx, vel_idx, None, ctx_mask)
        if guidance == 0.0:
            return self(x, t, points, pitch_idx, vel_idx, torch.ones(b, dtype=torch.bool, device=x.device), ctx_mask)
        if shared_uncond and ctx_mask is None and b > 1:
            drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(1, dtype=torch.bool)]).to(x.device)
            one = lambda a: torch.cat([a, a[:1]])  # noqa: E731
            v = self(one(x), one(t), one(points), one(pitch_idx), one(vel_idx), drop, None)
            vc, vu = v[:b], v[b:]
            return vu + guidance * (vc - vu)
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
        two = lambda a: None if a is None else torch.cat([a, a])  # noqa: E731
        v = self(two(x), two(t), two(points), two(pitch_idx), two(vel_idx), drop, two(ctx_mask))
        vc, vu = v[:b], v[b:]
        return vu + guidance * (vc - vu)

    # -- sampling --------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        noise: torch.Tensor,
        points: torch.Tensor,
        pitch_idx: torch.Tensor,
        vel_idx: torch.Tensor,
        steps: int,
        guidance: float,
        sampler: str = "euler",
        context: torch.Tensor | None = None,
        ctx_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Integrate from ``noise`` (t=0) to data (t=1). Euler: ``steps`` evaluations; Heun: ``2 * steps - 1`` (the
        last step is Euler, as in EDM). ``context`` ``[B, T, D]`` with ``ctx_mask`` ``[B, T]``: the masked frames are
        held at the clean context throughout (and so come out exactly)."""
        x = noise
        for x in self.sample_steps(noise, points, pitch_idx, vel_idx, steps, guidance, sampler, context, ctx_mask):
            pass
        return x

    def sample_steps(
        self,
        noise: torch.Tensor,
        points: torch.Tensor,
        pitch_idx: torch.Tensor,
        vel_idx: torch.Tensor,
        steps: int,
        guidance: float,
        sampler: str = "euler",
        context: torch.Tensor | None = None,
        ctx_mask: torch.Tensor | None = None,
    ):
        """``sample`` one step at a time: a generator of ``x`` after each of the ``steps`` steps (the last is what
        ``sample`` returns). ``guidance`` may also be one scale per step. Not decorated: the caller runs each
        ``next()`` under ``torch.no_grad()`` or ``torch.inference_mode()`` (a grad mode entered inside a generator
        would stay on in the caller's thread while it is suspended). The engine's live-morph preview spreads a
        few-step sample over its preview rounds."""
        if steps < 1:
            raise ValueError("steps must be >= 1")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler {sampler!r}: one of {', '.join(SAMPLERS)}")
        keep = None
        if context is not None:
            keep = ctx_mask.bool()[:, :, None]

        def clamp(x: torch.Tensor) -> torch.Tensor:
            return x if keep is None else torch.where(keep, context, x)

        scales = [float(g) for g in guidance] if isinstance(guidance, (list, tuple)) else [float(guidance)] * steps
        if len(scales) != steps:
            raise ValueError(f"{len(scales)} guidance scales for {steps} steps")

        def v(x: torch.Tensor, t: float, shared: bool = False, i: int = 0) -> torch.Tensor:
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
            return self.guided_velocity(x, tt, points, pitch_idx, vel_idx, scales[i], ctx_mask, shared)

        x = clamp(noise)
        # rows of one point and velocity layer start from the same noise (point_noise): their first unconditional
        # velocity is one computation (issue 18: 1/16 of the network's work at 8 steps)
        same_start = context is None and x.shape[0] > 1 and bool((x == x[:1]).all())
        ts = time_grid(steps, self.cfg.time_shift)
        for i in range(steps):
            t0, t1 = ts[i], ts[i + 1]
            d0 = v(x, t0, same_start and i == 0, i)
            x_next = clamp(x + (t1 - t0) * d0)
            if sampler == "heun" and i < steps - 1:
                d1 = v(x_next, t1, False, i)
                x_next = clamp(x + (t1 - t0) * 0.5 * (d0 + d1))
            x = x_next
            yield x

    def _prepare(self, points, pitches, velocities):
        p = next(self.parameters())
        points = torch.as_tensor(points, dtype=torch.float32).reshape(-1, self.cfg.latent_dim)
        pitches = torch.as_tensor(pitches).reshape(-1).long()
        self.check_condition(points, pitches)
        layers = velocity_index(self.cfg, None if velocities is None else torch.as_tensor(velocities).cpu(),
                                len(pitches))
        return points, layers, points.to(p.device, p.dtype), (pitches - self.cfg.pitch_min).to(p.device), \
            layers.to(p.device)

    def _noise(self, points_cpu, layers, seed_points, generator, segment) -> torch.Tensor:
        if seed_points:
            return point_noise(self.cfg, points_cpu, layers, segment)
        return torch.randn(len(points_cpu), self.cfg.num_frames, self.cfg.dim, generator=generator)

    @torch.no_grad()
    def generate(
        self,
        points,
        pitches,
        velocities=None,
        steps: int | None = None,
        guidance: float | None = None,
        seed_points: bool = True,
        sampler: str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Whole notes ``[B, T, D]`` (standardized frames) for rows of (point ``[B, 2]``, MIDI pitch ``[B]``,
        velocity ``[B]`` or None = 100). See the module docstring for the seeding and guidance semantics."""
        cfg = self.cfg
        points_cpu, layers, pts, pidx, vidx = self._prepare(points, pitches, velocities)
        p = next(self.parameters())
        noise = self._noise(points_cpu, layers, seed_points, generator, 0).to(p.device, p.dtype)
        was = self.training
        self.eval()
        try:
            return self.sample(noise, pts, pidx, vidx, steps or cfg.sample_steps,
                               cfg.guidance if guidance is None else float(guidance), sampler or cfg.sampler).float()
        finally:
            self.train(was)

    def generate_steps(self, points, pitches, velocities=None, steps: int | None = None, guidance=None,
                       sampler: str | None = None):
        """``generate`` (point-seeded noise) one sampler step at a time: a generator of the frames ``[B, T, D]`` after
        each step; the last equals ``generate``'s result with the same arguments. ``guidance``: one scale, or one per
        step. The model must be in eval mode; run each ``next()`` under ``torch.inference_mode()`` (see
        ``sample_steps``)."""
        cfg = self.cfg
        points_cpu, layers, pts, pidx, vidx = self._prepare(points, pitches, velocities)
        p = next(self.parameters())
        noise = self._noise(points_cpu, layers, True, None, 0).to(p.device, p.dtype)
        for x in self.sample_steps(noise, pts, pidx, vidx, steps or cfg.sample_steps,
                                   cfg.guidance if guidance is None else guidance, sampler or cfg.sampler):
            yield x.float()

    @torch.no_grad()
    def continue_(
        self,
        prev_frames: torch.Tensor,
        points,
        pitches,
        velocities=None,
        context: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed_points: bool = True,
        sampler: str | None = None,
        segment: int = 1,
        generator: torch.Generator | None = None,
        return_window: bool = False,
    ) -> torch.Tensor:
        """The next segment of held notes: the last ``context`` frames of ``prev_frames`` ``[B, Tp, D]`` start a new
        T-frame window as clean context; returns the ``T - context`` new frames ``[B, T - K, D]`` (or the whole
        window ``[B, T, D]`` whose first K frames equal the context exactly, with ``return_window``). ``segment``
        (1 for the first continuation, 2 for the next...) enters the noise seed."""
        cfg = self.cfg
        k = cfg.context_frames if context is None else int(context)
        if not 0 < k < cfg.num_frames:
            raise ValueError(f"context must be 1..{cfg.num_frames - 1} frames, got {k}")
        if prev_frames.ndim != 3 or prev_frames.shape[1] < k or prev_frames.shape[2] != cfg.dim:
            raise ValueError(f"prev_frames must be [B, >= {k}, {cfg.dim}], got {tuple(prev_frames.shape)}")
        points_cpu, layers, pts, pidx, vidx = self._prepare(points, pitches, velocities)
        if prev_frames.shape[0] != len(pidx):
            raise ValueError(f"{prev_frames.shape[0]} previous segments for {len(pidx)} notes")
        p = next(self.parameters())
        b = len(pidx)
        ctx = torch.zeros(b, cfg.num_frames, cfg.dim, device=p.device, dtype=p.dtype)
        ctx[:, :k] = prev_frames[:, -k:].to(p.device, p.dtype)
        mask = torch.zeros(b, cfg.num_frames, device=p.device, dtype=p.dtype)
        mask[:, :k] = 1
        noise = self._noise(points_cpu, layers, seed_points, generator, segment).to(p.device, p.dtype)
        was = self.training
        self.eval()
        try:
            out = self.sample(noise, pts, pidx, vidx, steps or cfg.sample_steps,
                              cfg.guidance if guidance is None else float(guidance), sampler or cfg.sampler,
                              context=ctx, ctx_mask=mask).float()
        finally:
            self.train(was)
        return out if return_window else out[:, k:]


# -- files ---------------------------------------------------------------------------------------------------------
def save_flow(model: FlowNet, out_dir: str | Path, name: str = "flow", state_dict: dict | None = None) -> None:
    """``<name>.pt`` (a state_dict: ``state_dict`` if given, e.g. the EMA weights, else the model's) and
    ``<name>.json`` (the config)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_torch(model.state_dict() if state_dict is None else state_dict, out / f"{name}.pt")
    model.cfg.save(out / f"{name}.json")


def load_flow(path: str | Path, name: str = "flow", map_location="cpu") -> FlowNet:
    """A trained flow from a run folder (``flow.json`` + ``flow.pt``, weights_only), in eval mode."""
    p = Path(path)
    model = FlowNet(FlowConfig.load(p / f"{name}.json"))
    model.load_state_dict(torch.load(p / f"{name}.pt", map_location=map_location, weights_only=True))
    return model.to(map_location).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- speed ---------------------------------------------------------------------------------------------------------
def benchmark(
    cfg: FlowConfig | None = None,
    steps: Sequence[int] = (4, 6, 8, 12, 16),
    samplers: Sequence[str] = ("euler",),
    guidance: float = 2.0,
    notes: int = 25,
    threads: int | None = None,
    repeats: int = 3,
    device: str = "cpu",
    model: FlowNet | None = None,
) -> dict:
    """Seconds to generate ``notes`` notes at one new point (MIDI 48..) for each (sampler, steps), the guidance
    batch included, plus one note alone: median and best wall time, median CPU time. A random-weight model of
    ``cfg`` times like a trained one."""
    import statistics
    import time

    if threads:
        torch.set_num_threads(threads)
    model = (model or FlowNet(cfg or FlowConfig())).to(device).eval()
    cfg = model.cfg
    lo = max(cfg.pitch_min, min(48, cfg.pitch_max - notes + 1))
    pitches = torch.arange(lo, lo + notes).clamp(max=cfg.pitch_max)
    rows = []

    def timed(fn) -> tuple[float, float, float]:
        """(median, best) wall seconds and the median CPU seconds of this process. On a shared machine the best is
        the least disturbed wall time, and with one thread the CPU time is what the call costs on an idle core."""
        fn()  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out, cpu = [], []
        for r in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            out.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        return statistics.median(out), min(out), statistics.median(cpu)

    for sampler in samplers:
        for k in steps:
            pts = torch.tensor([[0.1, -0.2]]).expand(notes, 2)
            t_all, b_all, c_all = timed(lambda: model.generate(pts, pitches, steps=k, guidance=guidance,
                                                               sampler=sampler))
            t_one, b_one, c_one = timed(lambda: model.generate(pts[:1], pitches[:1], steps=k, guidance=guidance,
                                                               sampler=sampler))
            calls = k if sampler == "euler" else 2 * k - 1
            rows.append({"sampler": sampler, "steps": k, "net_calls": calls, f"all_{notes}_s": round(t_all, 4),
                         f"all_{notes}_best_s": round(b_all, 4), f"all_{notes}_cpu_s": round(c_all, 4),
                         "first_note_s": round(t_one, 4), "first_note_best_s": round(b_one, 4),
                         "first_note_cpu_s": round(c_one, 4)})
    return {
        "threads": torch.get_num_threads(), "device": device, "guidance": guidance, "notes": notes,
        "parameters": count_parameters(model), "config": {k: getattr(cfg, k) for k in
                                                          ("patch", "d_model", "n_layers", "n_heads", "ff_mult")},
        "rows": rows,
    }
