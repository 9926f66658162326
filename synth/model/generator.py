"""Stage 2: a decoder-only Transformer that writes the codec embedding frames of a note for (timbre point, pitch).

Sequence layout (one row per note)::

    position:  0        1            2            3           ...   S+1
    input:     z-token  pitch-token  start-patch  patch 0     ...   patch S-2
    output:    -        -            patch 0      patch 1     ...   patch S-1

With ``velocity_cond`` the pitch token is ``pitch embedding + velocity-layer embedding`` (the nearest of
``velocity_layers``, as in the VAE decoder and the flow model); the layout does not change. The velocity embedding
starts at zero, so training starts from a velocity-blind generator and learns what each layer changes.

A *patch* is ``frames_per_step`` consecutive codec frames flattened into one token: with 4 frames per step a
300-frame note takes 75 steps instead of 300, which is what makes a new point playable on a 2-core CPU (DESIGN:
300 KV-cached steps x 25 notes took ~5.8 s). All T frames are produced (the last patch is cropped), none lost.

Attention is written by hand around ``F.scaled_dot_product_attention`` so that the KV cache is two preallocated
tensors per layer; ``generate`` and the teacher-forced ``forward`` share every weight, and a test checks that cached
generation equals uncached generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from synth.atomic import save_torch
from synth.model.configio import JsonConfig
from synth.model.vae import velocity_index


@dataclass
class GeneratorConfig(JsonConfig):
    num_frames: int = 300  # T
    dim: int = 128  # D
    pitch_min: int = 48
    pitch_max: int = 72  # the training CLI copies the VAE's range (wide dataset: 21-108)
    # velocity as a condition, added to the pitch token (see the module docstring). False (the default, and every
    # config written before this field) = the old generator, same weights, same outputs.
    velocity_cond: bool = False
    velocity_layers: tuple[int, ...] = (40, 70, 100, 127)
    latent_dim: int = 2
    frames_per_step: int = 4  # P: codec frames per Transformer step ("patching")
    d_model: int = 256
    n_layers: int = 4  # 6 costs ~1.5x per training step; the CPU budget decides (see MODEL_CARD)
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    # Refine the frozen VAE decoder: the generator also reads the VAE decoder's frames for (z, pitch) (added to the
    # token of the patch being predicted) and predicts the difference to them (zero-initialised output, so training
    # starts at the decoder's sound). The decoder is a deterministic function of (z, pitch), so the condition is
    # still the point and the pitch; the Transformer spends its capacity on what the decoder's smooth average lacks.
    refine_vae: bool = False
    # training
    cond_noise: float = 0.05  # N(0, 0.05) added to the VAE's mu during training (authors' code)
    # Condition on the INSTRUMENT's point (mean mu over its notes) instead of each note's own mu: that is how the
    # instrument is played (one pad point for every pitch), and what the eval does. Per-note mu carries what only
    # that note has (its key-zone sample, ...), which no pad point can supply; with the instrument's point the
    # generator must learn from the pitch how an instrument changes over its range.
    instrument_point: bool = False
    input_noise: float = 0.1  # N(0, sigma) on teacher-forced INPUT patches (exposure bias; targets stay clean)
    # loss = tf_weight * teacher-forced MSE + rollout_weight * MSE of a free-running generation with gradients
    # (Generator.rollout) on the first rollout_batch notes of the batch: the generator trained on its own output.
    tf_weight: float = 1.0
    rollout_weight: float = 0.0
    rollout_batch: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    batch_size: int = 32
    total_steps: int = 60000  # length of the cosine schedule (training may stop earlier and resume later)
    warmup_steps: int = 500
    seed: int = 0

    @property
    def num_pitches(self) -> int:
        return self.pitch_max - self.pitch_min + 1

    @property
    def num_steps(self) -> int:
        return -(-self.num_frames // self.frames_per_step)


class KVCache:
    """Preallocated keys/values of every layer: ``[n_layers, B, H, L, head_dim]`` each; ``length`` is filled."""

    def __init__(self, cfg: GeneratorConfig, batch: int, max_len: int, device, dtype):
        hd = cfg.d_model // cfg.n_heads
        shape = (cfg.n_layers, batch, cfg.n_heads, max_len, hd)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new keys/values ``[B, H, n, hd]`` after the filled part; return all of them so far."""
        start, n = self.length, k.shape[2]
        self.k[layer, :, :, start : start + n] = k
        self.v[layer, :, :, start : start + n] = v
        return self.k[layer, :, :, : start + n], self.v[layer, :, :, : start + n]


class GradKVCache:
    """The same contract as ``KVCache`` with growing tensors instead of in-place writes, so that autograd can run
    through a whole free-running generation (rollout training); slower, training only."""

    def __init__(self, cfg: GeneratorConfig):
        self.k: list[torch.Tensor | None] = [None] * cfg.n_layers
        self.v: list[torch.Tensor | None] = [None] * cfg.n_layers
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class Attention(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.h = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | GradKVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)  # each [B, H, n, hd]
        p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:
            start = cache.length
            keys, vals = cache.update(layer, k, v)
            if n == 1:  # the newest token sees everything cached
                y = F.scaled_dot_product_attention(q, keys, vals, dropout_p=p)
            else:  # prefill: causal among the new tokens, full view of what was cached before
                mask = torch.ones(n, start + n, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ff_mult * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.ff_mult * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor, cache: KVCache | GradKVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        d, pd = cfg.d_model, cfg.frames_per_step * cfg.dim
        # the 2D point enters through a small MLP: a single linear map of 2 numbers spans only a plane of token space
        self.z_proj = nn.Sequential(nn.Linear(cfg.latent_dim, d), nn.GELU(), nn.Linear(d, d))
        self.pitch_emb = nn.Embedding(cfg.num_pitches, d)
        self.vel_emb = None
        if cfg.velocity_cond:
            if not cfg.velocity_layers:
                raise ValueError("velocity_cond needs at least one velocity layer")
            self.vel_emb = nn.Embedding(len(cfg.velocity_layers), d)
            nn.init.zeros_(self.vel_emb.weight)  # start velocity-blind; the gradient does not depend on the value
        self.start = nn.Parameter(torch.zeros(pd))
        self.in_proj = nn.Linear(pd, d)
        self.pos = nn.Parameter(torch.randn(cfg.num_steps + 2, d) * 0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.out = nn.Linear(d, pd)  # plain linear output
        self.base_proj = nn.Linear(pd, d) if cfg.refine_vae else None
        if cfg.refine_vae:  # output = base + residual: start exactly at the VAE decoder
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    # -- pieces ----------------------------------------------------------------------------------------------------
    def to_patches(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` -> ``[B, S, P*D]`` (zero-padded at the end to a whole number of patches)."""
        b, t, dim = frames.shape
        p = self.cfg.frames_per_step
        s = -(-t // p)
        if s * p != t:
            frames = F.pad(frames, (0, 0, 0, s * p - t))
        return frames.reshape(b, s, p * dim)

    def from_patches(self, patches: torch.Tensor, num_frames: int) -> torch.Tensor:
        b, s, _ = patches.shape
        return patches.reshape(b, s * self.cfg.frames_per_step, self.cfg.dim)[:, :num_frames]

    def prefix(self, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None = None) -> torch.Tensor:
        """The three first tokens ``[B, 3, d]``: timbre point, pitch (+ velocity layer), learned start patch.
        ``velocity``: MIDI ``[B]`` or None (= 100); ignored without ``cfg.velocity_cond``."""
        idx = (pitch.long() - self.cfg.pitch_min).clamp(0, self.cfg.num_pitches - 1)
        start = self.in_proj(self.start).expand(z.shape[0], 1, -1)
        pitch_tok = self.pitch_emb(idx)
        if self.vel_emb is not None:
            vidx = velocity_index(self.cfg.velocity_layers, velocity, z.shape[0], idx.device)
            pitch_tok = pitch_tok + self.vel_emb(vidx)
        return torch.cat([self.z_proj(z.float())[:, None], pitch_tok[:, None], start], dim=1)

    def _base_patches(self, base: torch.Tensor | None, batch: int, steps: int) -> torch.Tensor | None:
        """The VAE decoder's frames as patches ``[B, S, P*D]`` (``refine_vae`` only; checked here)."""
        if not self.cfg.refine_vae:
            return None
        if base is None:
            raise ValueError("this generator refines the VAE decoder: pass base=vae.decode(z, pitch)")
        if base.shape[0] != batch or base.shape[1] < min(steps * self.cfg.frames_per_step, self.cfg.num_frames):
            raise ValueError(f"base frames {tuple(base.shape)} do not cover {batch} notes x {steps} steps")
        return self.to_patches(base.float())[:, :steps]

    def _run(self, h: torch.Tensor, cache: KVCache | GradKVCache | None, pos0: int) -> torch.Tensor:
        h = self.drop(h + self.pos[pos0 : pos0 + h.shape[1]])
        for i, blk in enumerate(self.blocks):
            h = blk(h, cache, i)
        if cache is not None:
            cache.length += h.shape[1]
        return self.out(self.ln_f(h))

    # -- the contract ----------------------------------------------------------------------------------------------
    def forward(
        self,
        z: torch.Tensor,
        pitch: torch.Tensor,
        frames_in: torch.Tensor,
        input_noise: float = 0.0,
        base: torch.Tensor | None = None,
        velocity: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing. ``frames_in`` are the note's true frames ``[B, T, D]``; they are shifted here (start
        patch, then patches 0..S-2) and the output holds the predictions of all T frames ``[B, T, D]``.
        ``input_noise`` adds N(0, sigma) to the shifted inputs only (a cheap guard against exposure bias).
        ``base``: the VAE decoder's frames ``[B, T, D]`` (required when ``cfg.refine_vae``); ``velocity``: MIDI
        ``[B]`` or None (= 100)."""
        t = frames_in.shape[1]
        patches = self.to_patches(frames_in.float())
        inp = patches[:, :-1]
        if input_noise > 0:
            inp = inp + input_noise * torch.randn_like(inp)
        h = torch.cat([self.prefix(z, pitch, velocity), self.in_proj(inp)], dim=1)  # [B, S+2, d]
        bp = self._base_patches(base, z.shape[0], patches.shape[1])
        if bp is not None:  # each predicting token also reads the decoder's version of the patch it predicts
            h = torch.cat([h[:, :2], h[:, 2:] + self.base_proj(bp)], dim=1)
        y = self._run(h, None, 0)[:, 2:]  # outputs at the start patch and after: S predictions
        if bp is not None:
            y = y + bp
        return self.from_patches(y, t)

    def _step_input(self, token: torch.Tensor, bp: torch.Tensor | None, i: int) -> torch.Tensor:
        """Token ``[B, 1, d]`` that predicts patch ``i`` (plus the decoder's patch i when refining)."""
        return token if bp is None else token + self.base_proj(bp[:, i : i + 1])

    def _step_output(self, y: torch.Tensor, bp: torch.Tensor | None, i: int) -> torch.Tensor:
        return y if bp is None else y + bp[:, i : i + 1]

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        pitch: torch.Tensor,
        num_frames: int | None = None,
        base: torch.Tensor | None = None,
        velocity: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Free-running generation of ``num_frames`` frames (default T) with a KV cache, batched ``[B, T, D]``.
        ``base``: the VAE decoder's frames for (z, pitch, velocity) when ``cfg.refine_vae`` (see
        ``generate_frames``); ``velocity``: MIDI ``[B]`` or None (= 100; ignored without ``cfg.velocity_cond``)."""
        return self._free_run(z, pitch, num_frames, base, grad=False, velocity=velocity)

    def rollout(
        self,
        z: torch.Tensor,
        pitch: torch.Tensor,
        num_frames: int | None = None,
        base: torch.Tensor | None = None,
        velocity: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``generate`` with autograd: the network runs on its own output and the loss on the result trains it for
        what the player hears (rollout training; teacher forcing alone never shows it its own drift)."""
        return self._free_run(z, pitch, num_frames, base, grad=True, velocity=velocity)

    def _free_run(self, z, pitch, num_frames: int | None, base: torch.Tensor | None, grad: bool,
                  velocity: torch.Tensor | None = None) -> torch.Tensor:
        num_frames = num_frames or self.cfg.num_frames
        s = -(-num_frames // self.cfg.frames_per_step)
        if s > self.cfg.num_steps:
            raise ValueError(f"at most {self.cfg.num_frames} frames (asked {num_frames})")
        p = next(self.parameters())
        z, pitch = z.to(p.device, p.dtype), pitch.to(p.device)
        bp = self._base_patches(base, z.shape[0], s)
        cache = GradKVCache(self.cfg) if grad else KVCache(self.cfg, z.shape[0], s + 2, p.device, p.dtype)
        pre = self.prefix(z, pitch, velocity)
        pre = torch.cat([pre[:, :2], self._step_input(pre[:, 2:], bp, 0)], dim=1)
        out = self._step_output(self._run(pre, cache, 0)[:, -1:], bp, 0)  # patch 0
        patches = [out]
        for i in range(1, s):
            out = self._step_output(self._run(self._step_input(self.in_proj(out), bp, i), cache, i + 2), bp, i)
            patches.append(out)
        return self.from_patches(torch.cat(patches, dim=1), num_frames)

    @torch.no_grad()
    def generate_uncached(
        self,
        z: torch.Tensor,
        pitch: torch.Tensor,
        num_frames: int | None = None,
        base: torch.Tensor | None = None,
        velocity: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reference implementation without a cache (quadratic): the whole sequence is re-run through ``forward``'s
        teacher-forced pass on the frames generated so far, every step."""
        num_frames = num_frames or self.cfg.num_frames
        s = -(-num_frames // self.cfg.frames_per_step)
        p = self.cfg.frames_per_step
        frames = torch.zeros(z.shape[0], 0, self.cfg.dim, device=z.device)
        for i in range(s):
            # forward() shifts its input by one patch: the prediction of patch i reads patches 0..i-1
            padded = torch.cat([frames, torch.zeros(z.shape[0], p, self.cfg.dim, device=z.device)], dim=1)
            y = self.forward(z, pitch, padded, base=None if base is None else base[:, : (i + 1) * p],
                             velocity=velocity)
            frames = torch.cat([frames, y[:, i * p : (i + 1) * p]], dim=1)
        return frames[:, :num_frames]


def refine_base(
    generator: Generator, vae, z: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor | None = None
) -> torch.Tensor | None:
    """The VAE decoder's frames for (z, pitch, velocity) when ``generator`` refines them (``cfg.refine_vae``), else
    None. The velocity goes to the decoder too (a decoder without ``velocity_cond`` ignores it)."""
    if not generator.cfg.refine_vae:
        return None
    with torch.no_grad():
        return vae.decode(z, pitch, velocity)


def generate_frames(
    generator: Generator,
    vae,
    z: torch.Tensor,
    pitch: torch.Tensor,
    num_frames: int | None = None,
    velocity: torch.Tensor | None = None,
):
    """The generator's frames for (z, pitch, velocity), handing it the VAE decoder's frames when it refines them.
    ``velocity``: MIDI ``[B]`` or None (= 100)."""
    return generator.generate(z, pitch, num_frames, base=refine_base(generator, vae, z, pitch, velocity),
                              velocity=velocity)


def save_generator(model: Generator, out_dir: str | Path, name: str = "generator") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_torch(model.state_dict(), out / f"{name}.pt")
    model.cfg.save(out / f"{name}.json")


def load_generator(path: str | Path, name: str = "generator", map_location="cpu") -> Generator:
    p = Path(path)
    model = Generator(GeneratorConfig.load(p / f"{name}.json"))
    model.load_state_dict(torch.load(p / f"{name}.pt", map_location=map_location, weights_only=True))
    model.eval()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_ = math  # (math kept for callers computing schedules from this module)
