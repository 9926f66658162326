"""Training loop of the generator: VAE frozen, condition = mu + N(0, cond_noise), MSE with teacher forcing.

Exposure bias: with teacher forcing the generator is trained on true previous frames but runs on its own. Guards:
Gaussian noise on the teacher-forced INPUT patches (``input_noise``; targets stay clean); checkpoint selection on
FREE-RUNNING error on the valid split (what the player hears), not on teacher-forced loss; and rollout training
(``rollout_weight``): the loss of a whole free-running generation, backpropagated through every step, so the
network is trained on its own output. On the round-2 data teacher forcing alone reached a teacher-forced valid MSE
of 0.009 but a free-running one of 0.10 (the VAE decoder: 0.107), and a VAE-refining generator trained that way
drifted further (free-running 0.128 -> 0.159 over steps 250-750), which is why rollouts exist.

Output folder (``runs/gen/<name>/``): ``generator.pt`` + ``generator.json`` (the best checkpoint by free-running
valid error), ``last.pt`` (state_dict of the latest step), ``ckpt.pt`` (resume: model, optimizer, scheduler, step,
RNG, best score), ``log.jsonl``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synth.atomic import save_torch
from synth import distributed
from synth.model.data import NoteSet
from synth.model.generator import Generator, GeneratorConfig, generate_frames, refine_base, save_generator
from synth.model.train_vae import _rng_state, _set_rng_state, cosine_schedule, seed_everything
from synth.model.vae import TimbreVAE, group_mean


# Config fields a resumed run may change: the schedule's length, so a finished run can be trained further.
RESUME_MAY_CHANGE = {"total_steps"}


@torch.no_grad()
def encode_mu(vae: TimbreVAE, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """mu of every note; ``x`` is ``[N, T, D]`` standardized (any float dtype)."""
    vae.eval()
    dev = next(vae.parameters()).device
    return torch.cat([vae.encode(x[i : i + chunk].to(dev).float())[0].cpu() for i in range(0, len(x), chunk)])


@torch.no_grad()
def _chunked_mse(predict, z: torch.Tensor, pitch: torch.Tensor, x: torch.Tensor, device, chunk: int = 64,
                 velocity: torch.Tensor | None = None) -> float:
    """MSE of ``predict(z, pitch, x, velocity)`` frames against ``x`` over all notes, ``chunk`` notes at a time
    (``velocity`` None: None is handed on, = 100)."""
    err, n = 0.0, 0
    for i in range(0, len(z), chunk):
        xb = x[i : i + chunk].to(device).float()
        vb = None if velocity is None else velocity[i : i + chunk].to(device)
        y = predict(z[i : i + chunk].to(device), pitch[i : i + chunk].to(device), xb, vb)[:, : x.shape[1]]
        err += F.mse_loss(y, xb, reduction="sum").item()
        n += y.numel()
    return err / max(1, n)


def free_running_error(gen: Generator, vae: TimbreVAE, z, pitch, x, velocity=None, chunk: int = 64) -> float:
    """MSE between freely generated and true frames (standardized units)."""
    gen.eval()
    dev = next(gen.parameters()).device
    return _chunked_mse(lambda zb, pb, xb, vb: generate_frames(gen, vae, zb, pb, xb.shape[1], velocity=vb),
                        z, pitch, x, dev, chunk, velocity)


def teacher_forced_error(gen: Generator, vae: TimbreVAE, z, pitch, x, velocity=None, chunk: int = 64) -> float:
    gen.eval()
    dev = next(gen.parameters()).device
    return _chunked_mse(lambda zb, pb, xb, vb: gen(zb, pb, xb, base=refine_base(gen, vae, zb, pb, vb), velocity=vb),
                        z, pitch, x, dev, chunk, velocity)


def vae_decoder_error(vae: TimbreVAE, z, pitch, x, velocity=None, chunk: int = 64) -> float:
    """MSE of the VAE decoder's frames (same notes, same points): the bar a generator has to clear."""
    dev = next(vae.parameters()).device
    return _chunked_mse(lambda zb, pb, xb, vb: vae.decode(zb, pb, vb), z, pitch, x, dev, chunk, velocity)


def training_loss(gen: Generator, vae: TimbreVAE, z: torch.Tensor, pitch: torch.Tensor, x: torch.Tensor,
                  velocity: torch.Tensor | None = None) -> torch.Tensor:
    """Teacher-forced MSE and/or the MSE of a free-running rollout (see GeneratorConfig.rollout_weight)."""
    cfg = gen.cfg
    base = refine_base(gen, vae, z, pitch, velocity)
    loss = x.new_zeros(())
    if cfg.tf_weight > 0:
        y = gen(z, pitch, x, input_noise=cfg.input_noise, base=base, velocity=velocity)
        loss = loss + cfg.tf_weight * F.mse_loss(y, x)
    if cfg.rollout_weight > 0:
        n = min(cfg.rollout_batch, len(z))
        y = gen.rollout(z[:n], pitch[:n], x.shape[1], base=None if base is None else base[:n],
                        velocity=None if velocity is None else velocity[:n])
        loss = loss + cfg.rollout_weight * F.mse_loss(y, x[:n])
    return loss


def condition_points(cfg: GeneratorConfig, mu: torch.Tensor, instrument_names: list[str]) -> torch.Tensor:
    """Each note's condition: its own mu, or with ``cfg.instrument_point`` its instrument's mean mu."""
    if not cfg.instrument_point:
        return mu
    _, inverse = np.unique(np.asarray(instrument_names), return_inverse=True)
    return group_mean(mu, torch.from_numpy(inverse.reshape(-1)))


def valid_subset(valid: NoteSet, mu: torch.Tensor, n: int, seed: int = 0):
    """A fixed spread of valid notes (all instruments, mixed pitches and velocities) for cheap free-running checks:
    ``(mu, pitch, x, velocity)``, the argument order of the ``*_error`` functions."""
    idx = np.random.default_rng(seed).permutation(len(valid))[:n]
    idx = torch.from_numpy(np.sort(idx))
    return mu[idx], valid.pitch[idx], valid.x[idx], valid.velocity[idx]


def train_generator(
    train: NoteSet,
    valid: NoteSet | None,
    vae: TimbreVAE,
    cfg: GeneratorConfig,
    out_dir: str | Path,
    minutes: float | None = None,
    max_steps: int | None = None,
    valid_every: int = 500,
    valid_notes: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Generator:
    """Train or resume until ``minutes`` of wall time, ``max_steps`` (absolute) or ``cfg.total_steps``.

    Under torchrun (see ``synth.distributed``) every rank draws the same global batch and trains on its share; rank 0
    validates, writes the files and decides when the time is up."""
    dd = distributed.context(device)
    out = Path(out_dir)
    if dd.is_main():
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    vae = vae.to(device).eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    mu_train = condition_points(cfg, encode_mu(vae, train.x), train.instrument_names)
    val = None
    if valid is not None and len(valid):
        val = valid_subset(valid, condition_points(cfg, encode_mu(vae, valid.x), valid.instrument_names), valid_notes,
                           cfg.seed)
    gen = Generator(cfg).to(device)
    opt = torch.optim.AdamW(gen.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    sched = cosine_schedule(opt, cfg.total_steps, cfg.warmup_steps)
    step, best = 0, float("inf")
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        # on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the model's device
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        changed = sorted(k for k, v in json.loads(cfg.to_json()).items() if ck["config"].get(k) != v)
        if set(changed) - RESUME_MAY_CHANGE:
            raise RuntimeError(f"{ckpt_path} was made with a different config ({', '.join(changed)}); "
                               f"use a new --out folder (only {', '.join(sorted(RESUME_MAY_CHANGE))} may change on resume)")
        gen.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step, best = ck["step"], ck["best"]
        _set_rng_state(ck["rng"])
    if dd.is_main():
        cfg.save(out / "generator.json")
    loss_of = dd.wrap(gen, training_loss)  # training_loss(gen, ...) in a world of one, else inside DDP
    end_step = min(cfg.total_steps, max_steps) if max_steps is not None else cfg.total_steps
    deadline = time.time() + 60 * minutes if minutes else None
    bar = None
    if progress and dd.is_main():
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=step, desc="generator", dynamic_ncols=True)
    gen_rng = torch.Generator().manual_seed(cfg.seed * 1000003 + step)
    running, n_run = 0.0, 0

    def save_ckpt() -> None:
        save_torch(
            {
                "model": gen.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                "best": best, "rng": _rng_state(), "config": json.loads(cfg.to_json()),
            },
            ckpt_path,
        )
        save_torch(gen.state_dict(), out / "last.pt")

    def validate() -> None:
        nonlocal best
        rec = {"step": step, "train_mse": round(running / max(1, n_run), 6), "lr": sched.get_last_lr()[0]}
        if val is not None:
            t0 = time.time()
            rec["valid_tf_mse"] = round(teacher_forced_error(gen, vae, *val), 6)
            rec["valid_free_mse"] = round(free_running_error(gen, vae, *val), 6)
            rec["valid_seconds"] = round(time.time() - t0, 1)
            score = rec["valid_free_mse"]
        else:
            score = rec["train_mse"]
        if score < best:
            best = score
            save_generator(gen, out)
            rec["best"] = True
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        save_ckpt()
        gen.train()

    if val is not None and step == 0 and dd.is_main():
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps({"step": 0, "vae_decoder_valid_mse": round(vae_decoder_error(vae, *val), 6)}) + "\n")
    gen.train()
    while step < end_step and not dd.agree(deadline is not None and time.time() >= deadline):
        dd.seed_step(cfg.seed, step)
        idx = dd.shard(torch.randint(0, len(train), (cfg.batch_size,), generator=gen_rng))
        xb = train.x[idx].to(device).float()
        z = mu_train[idx].to(device)
        z = z + cfg.cond_noise * torch.randn_like(z)
        pb = train.pitch[idx].to(device)
        vb = train.velocity[idx].to(device)
        loss = loss_of(vae, z, pb, xb, vb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        running += dd.mean({"loss": loss.item()})["loss"]
        n_run += 1
        if bar is not None:
            bar.set_postfix(mse=f"{running / n_run:.4f}", best=f"{best:.4f}", refresh=False)
            bar.update(1)
        if step % valid_every == 0:
            if dd.is_main():
                validate()
            running, n_run = 0.0, 0
    if n_run and dd.is_main():
        validate()
    if bar is not None:
        bar.close()
    if dd.is_main() and not (out / "generator.pt").exists():
        save_generator(gen, out)
    dd.barrier()  # every rank returns once rank 0's files are written (a next command may read them)
    gen.eval()
    return gen
