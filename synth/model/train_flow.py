"""Training loop of the flow-matching generator (``flow.py``): frozen VAE gives the points, rectified-flow loss.

Every example: a note ``x`` ``[T, D]`` (standardized), its instrument's point (mean mu of the instrument's core notes,
see ``instrument_points``) plus N(0, cond_noise), its pitch and velocity layer; noise ``e``; a flow time t
(logit-normal mixed with uniform, see FlowConfig); ``x_t = (1 - t) e + t x``; the loss is the MSE between the
predicted and the true velocity ``x - e``. A share ``p_uncond`` of examples gets the null condition (classifier-free
guidance); a share ``p_context`` is a continuation example: the window starts at a random offset in the note, its
first K frames are given clean (and marked in the mask channel) and left out of the loss.

Resuming is exact: the batch/noise generator's state is checkpointed with the model, the EMA weights, the optimizer,
the scheduler and the global RNG, so an interrupted run ends with the same weights as an uninterrupted one.

Output folder (``runs/flow/<name>/``): ``flow.json`` (FlowConfig) + ``flow.pt`` (EMA state_dict at the best EMA valid
loss: what to sample with), ``last_ema.pt`` (EMA state_dict of the latest step), ``last.pt`` (raw weights of the
latest step), ``ckpt.pt`` (resume state: written every ``ckpt_minutes``, at each validation and at the end),
``log.jsonl`` (one line per validation).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from synth.atomic import save_torch
from synth import distributed
from synth.model.data import NoteSet
from synth.model.flow import FlowConfig, FlowNet, save_flow, velocity_index
from synth.model.train_generator import encode_mu  # noqa: F401  (re-exported: the CLI takes it from here)
from synth.model.train_vae import _rng_state, _set_rng_state, cosine_schedule, seed_everything

# Config fields a resumed run may change: the schedule's length and the sampling defaults (training ignores them).
RESUME_MAY_CHANGE = {"total_steps", "sample_steps", "sampler", "guidance", "time_shift", "context_frames"}


def instrument_points(
    mu: torch.Tensor,
    instrument_names: list[str],
    pitch: torch.Tensor,
    velocity: torch.Tensor,
    core_pitches: tuple[int, int] | None = None,
    core_velocity: int | None = 100,
) -> torch.Tensor:
    """Each note's condition: its instrument's point = the mean mu over that instrument's CORE notes (pitches in
    ``core_pitches``, velocity ``core_velocity``: what the VAE was trained on; the frozen VAE's encoder has not seen
    MIDI 21 or velocity 40, so their mu would pull the point off the instrument's place on the map); over all of its
    notes when it has no core note. Same idea as the generator's ``instrument_point`` (one pad point per instrument,
    every pitch and velocity played from it)."""
    names = np.asarray(instrument_names)
    _, inverse = np.unique(names, return_inverse=True)
    inverse = torch.from_numpy(inverse.reshape(-1))
    core = torch.ones(len(mu), dtype=torch.bool)
    if core_pitches is not None:
        core &= (pitch >= core_pitches[0]) & (pitch <= core_pitches[1])
    if core_velocity is not None:
        core &= velocity == core_velocity
    k = int(inverse.max()) + 1 if len(inverse) else 0
    out = torch.zeros(k, mu.shape[1])
    for use in (torch.ones_like(core), core):  # all notes first, then the core mean where there is a core
        sums = torch.zeros(k, mu.shape[1]).index_add(0, inverse[use], mu[use].float())
        counts = torch.bincount(inverse[use], minlength=k).float()
        have = counts > 0
        out[have] = sums[have] / counts[have, None]
    return out[inverse]


def sample_t(cfg: FlowConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    """Flow times ``[n]`` in (0, 1): logit-normal with a ``t_uniform_share`` of uniform draws (see FlowConfig)."""
    u = torch.rand(n, generator=gen)
    if cfg.t_sampling == "uniform":
        return u
    ln = torch.sigmoid(cfg.t_mean + cfg.t_std * torch.randn(n, generator=gen))
    pick = torch.rand(n, generator=gen) < cfg.t_uniform_share
    return torch.where(pick, u, ln)


def context_batch(cfg: FlowConfig, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(windows ``[B, T, D]``, context mask ``[B, T]``): a ``p_context`` share of rows becomes a continuation example
    (window from a random offset <= context_shift_max, padded by repeating the last frame; first K frames given,
    K uniform in [context_min, context_max]); the other rows are the notes as they are, with an empty mask."""
    b, t, d = x.shape
    is_ctx = torch.rand(b, generator=gen) < cfg.p_context
    shift = torch.randint(0, cfg.context_shift_max + 1, (b,), generator=gen) * is_ctx
    k = torch.randint(cfg.context_min, cfg.context_max + 1, (b,), generator=gen) * is_ctx
    frames = torch.arange(t)
    if bool(shift.any()):
        idx = (shift[:, None] + frames[None]).clamp(max=t - 1)
        x = x.gather(1, idx[:, :, None].expand(b, t, d).to(x.device))
    mask = (frames[None] < k[:, None]).float()
    return x, mask


def flow_loss(net: FlowNet, x: torch.Tensor, points: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
              gen: torch.Generator, train: bool = True) -> torch.Tensor:
    """The rectified-flow training loss of one batch (``x`` standardized ``[B, T, D]`` on the model's device; all
    randomness from ``gen``, a CPU generator, so the run is reproducible and resumable on any device)."""
    cfg = net.cfg
    dev = x.device
    b = x.shape[0]
    points = points.to(dev).float()
    if train:
        x, mask = context_batch(cfg, x, gen)
        drop = torch.rand(b, generator=gen) < cfg.p_uncond
        points = points + cfg.cond_noise * torch.randn(points.shape, generator=gen).to(dev)
    else:
        mask, drop = torch.zeros(b, x.shape[1]), torch.zeros(b, dtype=torch.bool)
    t = sample_t(cfg, b, gen)
    noise = torch.randn(x.shape, generator=gen).to(dev)
    t, mask, drop = t.to(dev), mask.to(dev), drop.to(dev)
    tt = t[:, None, None]
    x_t = (1 - tt) * noise + tt * x
    keep = mask[:, :, None].bool()
    x_in = torch.where(keep, x, x_t)
    pidx = (pitch.to(dev).long() - cfg.pitch_min).clamp(0, cfg.num_pitches - 1)
    vidx = velocity_index(cfg, velocity.to(dev), b, dev)
    v = net(x_in, t, points, pidx, vidx, drop, mask)
    err = (v - (x - noise)).square().mean(dim=2)  # [B, T]
    free = 1 - mask
    if train:  # validation stays the plain MSE: comparable across runs with and without onset weighting
        free = free * frame_weights(cfg, x.shape[1], dev)[None]
    return (err * free).sum() / free.sum().clamp(min=1)


def frame_weights(cfg: FlowConfig, num_frames: int, device=None) -> torch.Tensor:
    """Loss weight per frame ``[T]``: ``onset_weight`` on the first ``onset_frames`` frames, 1 elsewhere (see
    FlowConfig). A continuation row's first frames are given context, so its weights fall on masked frames."""
    w = torch.ones(num_frames, device=device)
    w[: cfg.onset_frames] = cfg.onset_weight
    return w


def note_weights(cfg: FlowConfig, velocity: torch.Tensor) -> torch.Tensor | None:
    """Sampling weight per training note ``[N]`` (``velocity_balance``; None = uniform): the share of a velocity
    layer in the batches goes from its share of notes (balance 0) to an equal share per layer (balance 1)."""
    if cfg.velocity_balance <= 0 or not len(velocity):
        return None
    layer = velocity_index(cfg, velocity, len(velocity))
    counts = torch.bincount(layer, minlength=len(cfg.velocity_layers)).double()
    return counts[layer].pow(-cfg.velocity_balance)


@torch.no_grad()
def valid_loss(net: FlowNet, x, points, pitch, velocity, chunk: int = 64, seed: int = 1234) -> float:
    """The flow loss on fixed valid notes with fixed noise and flow times (no dropout, no context): comparable
    across steps and runs."""
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    dev = next(net.parameters()).device
    total, n = 0.0, 0
    for i in range(0, len(x), chunk):
        xb = x[i : i + chunk].to(dev).float()
        loss = flow_loss(net, xb, points[i : i + chunk], pitch[i : i + chunk], velocity[i : i + chunk], gen, False)
        total += loss.item() * len(xb)
        n += len(xb)
    return total / max(1, n)


def valid_subset(valid: NoteSet, points: torch.Tensor, n: int, seed: int = 0):
    idx = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(valid))[:n]))
    return valid.x[idx], points[idx], valid.pitch[idx], valid.velocity[idx]


def load_init(net: FlowNet, ema: FlowNet, init: FlowNet) -> None:
    """Start ``net`` and ``ema`` from ``init``'s weights (fine-tuning a trained flow on a new schedule). The networks
    must have the same shape; sampling and training-only fields may differ."""
    shaped = ("dim", "d_model", "n_layers", "n_heads", "ff_mult", "patch", "num_frames", "latent_dim", "pitch_min",
              "pitch_max", "velocity_layers")
    differ = [k for k in shaped if getattr(init.cfg, k) != getattr(net.cfg, k)]
    if differ:
        raise RuntimeError("the --init flow has another shape (" + ", ".join(
            f"{k}: {getattr(init.cfg, k)} vs {getattr(net.cfg, k)}" for k in differ) + ")")
    net.load_state_dict(init.state_dict())  # copied into net's own float32 tensors (a bundle stores float16)
    ema.load_state_dict(init.state_dict())


def _update_ema(ema: FlowNet, net: FlowNet, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters()):
            e.lerp_(p, 1.0 - decay)


def train_flow(
    train: NoteSet,
    valid: NoteSet | None,
    train_points: torch.Tensor,
    valid_points: torch.Tensor | None,
    cfg: FlowConfig,
    out_dir: str | Path,
    minutes: float | None = None,
    max_steps: int | None = None,
    valid_every: int = 500,
    valid_notes: int = 128,
    ckpt_minutes: float = 5.0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    init: FlowNet | None = None,
) -> FlowNet:
    """Train or resume until ``minutes`` of wall time (this call), ``max_steps`` (absolute) or ``cfg.total_steps``.
    ``train_points`` ``[N, 2]``: each training note's condition point (``instrument_points``). Returns the EMA
    network in eval mode. ``init``: a trained flow whose weights start a new run (network and EMA; the optimizer,
    schedule and step start afresh); ignored when the run folder already holds a checkpoint to resume.

    Under torchrun (see ``synth.distributed``) every rank draws the same global batch from ``gen`` and trains on its
    share, with noise and flow times of its own; the EMA follows identical weights on every rank; rank 0 validates,
    writes the files and decides when the time is up."""
    dd = distributed.context(device)
    out = Path(out_dir)
    if dd.is_main():
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    net = FlowNet(cfg).to(device)
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    sched = cosine_schedule(opt, cfg.total_steps, cfg.warmup_steps)
    gen = torch.Generator().manual_seed(cfg.seed * 1000003 + 17)
    step, best, elapsed = 0, float("inf"), 0.0
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        # on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the model's device
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        changed = sorted(k for k, v in json.loads(cfg.to_json()).items() if ck["config"].get(k) != v)
        if set(changed) - RESUME_MAY_CHANGE:
            may = ", ".join(sorted(RESUME_MAY_CHANGE))
            raise RuntimeError(f"{ckpt_path} was made with a different config ({', '.join(changed)}); "
                               f"use a new --out folder (only {may} may change on resume)")
        net.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step, best, elapsed = ck["step"], ck["best"], ck["elapsed"]
        gen.set_state(ck["gen"])
        _set_rng_state(ck["rng"])
    elif init is not None:
        load_init(net, ema, init)
    if dd.is_main():
        cfg.save(out / "flow.json")
    loss_of = dd.wrap(net, flow_loss)  # flow_loss(net, ...) in a world of one, else inside DDP
    val = None
    if valid is not None and valid_points is not None and len(valid):
        val = valid_subset(valid, valid_points, valid_notes, cfg.seed)
    end_step = min(cfg.total_steps, max_steps) if max_steps is not None else cfg.total_steps
    t_start = time.time()
    deadline = t_start + 60 * minutes if minutes else None
    last_ckpt = t_start
    bar = None
    if progress and dd.is_main():
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=step, desc="flow", dynamic_ncols=True)
    running, n_run = 0.0, 0
    # on a GPU the whole split lives there (the default cache is ~0.3 GB in float16); batches are indexed in place
    data_x = train.x.to(device) if str(device).startswith("cuda") else train.x
    weights = note_weights(cfg, train.velocity)

    def save_ckpt() -> None:
        nonlocal last_ckpt
        save_torch(
            {
                "model": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict(), "step": step, "best": best, "gen": gen.get_state(),
                "rng": _rng_state(), "elapsed": elapsed + time.time() - t_start, "config": json.loads(cfg.to_json()),
            },
            ckpt_path,
        )
        save_torch(net.state_dict(), out / "last.pt")
        save_torch(ema.state_dict(), out / "last_ema.pt")
        last_ckpt = time.time()

    def validate() -> None:
        nonlocal best
        rec = {"step": step, "train_loss": round(running / max(1, n_run), 6), "lr": sched.get_last_lr()[0],
               "elapsed_s": round(elapsed + time.time() - t_start, 1)}
        if val is not None:
            t0 = time.time()
            rec["valid_loss"] = round(valid_loss(ema, *val), 6)  # EMA weights: what is sampled
            rec["valid_loss_raw"] = round(valid_loss(net, *val), 6)
            rec["valid_seconds"] = round(time.time() - t0, 1)
            score = rec["valid_loss"]
        else:
            score = rec["train_loss"]
        if score < best:
            best = score
            save_flow(ema, out, state_dict=ema.state_dict())
            rec["best"] = True
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        save_ckpt()
        net.train()

    net.train()
    while step < end_step and not dd.agree(deadline is not None and time.time() >= deadline):
        dd.seed_step(cfg.seed, step)
        if weights is None:
            idx = torch.randint(0, len(train), (cfg.batch_size,), generator=gen)
        else:
            idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
        idx = dd.shard(idx)
        xb = data_x[idx.to(data_x.device)].to(device).float()
        loss = loss_of(xb, train_points[idx], train.pitch[idx], train.velocity[idx],
                       dd.step_generator(gen, cfg.seed, step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        # EMA with a warm-up (1 + n) / (10 + n): early weights are not averaged in for thousands of steps
        _update_ema(ema, net, min(cfg.ema_decay, (1 + step) / (10 + step)))
        running += dd.mean({"loss": loss.item()})["loss"]
        n_run += 1
        if bar is not None:
            bar.set_postfix(loss=f"{running / n_run:.4f}", best=f"{best:.4f}", refresh=False)
            bar.update(1)
        if step % valid_every == 0:
            if dd.is_main():
                validate()
            running, n_run = 0.0, 0
        elif dd.is_main() and time.time() - last_ckpt > 60 * ckpt_minutes:
            save_ckpt()
    if dd.is_main():
        if n_run:
            validate()
        elif step and not ckpt_path.exists():
            save_ckpt()
    if bar is not None:
        bar.close()
    if dd.is_main() and not (out / "flow.pt").exists():
        save_flow(ema, out, state_dict=ema.state_dict())
    dd.barrier()  # every rank returns once rank 0's files are written (a next command may read them)
    return ema.eval()
