"""Training loop of the timbre VAE: AdamW + warmup/cosine schedule (built once), batches of same-instrument groups,
checkpoints that resume exactly (model, optimizer, scheduler, epoch, RNG states), a progress bar with every term.

Output folder (``runs/vae/<name>/``): ``vae.pt`` + ``vae.json`` (state_dict + config), ``instruments.json`` (the
instrument classifier's classes, sorted), ``ckpt.pt`` (resume state), ``log.jsonl`` (one line per epoch).
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from synth import atomic
from synth.atomic import save_torch
from synth import distributed
from synth.model.data import NoteSet, instrument_batches
from synth.model.losses import vae_loss
from synth.model.vae import TimbreVAE, VAEConfig, save_vae


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, floor: float = 0.05):
    """Linear warmup then cosine decay to ``floor * lr``; created once and stepped every optimizer step (the
    authors' code rebuilt its optimizer and so never decayed)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _batch(train: NoteSet, b: np.ndarray):
    """(x, pitch, velocity, instrument, family) of the notes ``b``.

    The instrument (the classifier's class and the neighbour loss's group) is the same whatever the note's velocity
    layer: all layers of an instrument are one instrument, pulled to one point (the map is timbre only; the decoder
    gets the velocity)."""
    bi = torch.from_numpy(b)
    return train.x[bi].float(), train.pitch[bi], train.velocity[bi], train.instrument[bi], train.family[bi]


def train_vae(
    train: NoteSet,
    cfg: VAEConfig,
    out_dir: str | Path,
    instruments: list[str],
    device: str | torch.device = "cpu",
    progress: bool = True,
    max_steps: int | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> TimbreVAE:
    """Train (or resume) a VAE on ``train`` (prepared layout ``[N, D, T']``); returns the model in eval mode.

    ``max_steps`` stops early (tests). Batches are groups of notes per instrument (see ``instrument_batches``); their order is
    drawn from ``(seed, epoch)`` so a resumed run sees the same batches as an uninterrupted one.

    Under torchrun (see ``synth.distributed``) every rank draws the same batches and trains on its share of each;
    rank 0 writes the files.
    """
    dd = distributed.context(device)
    out = Path(out_dir)
    if dd.is_main():
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    model = TimbreVAE(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    steps_per_epoch = len(
        instrument_batches(train.instrument_names, cfg.batch_size, np.random.default_rng(0), cfg.notes_per_instrument)
    )
    total = steps_per_epoch * cfg.epochs
    sched = cosine_schedule(opt, total, steps_per_epoch * cfg.warmup_epochs)
    start_epoch = 0
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        # on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest to the model's device
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        # a checkpoint written before an option was retired still holds it (at its off value, else refused)
        if VAEConfig.without_retired(ck["config"]) != json.loads(cfg.to_json()):
            raise RuntimeError(f"{ckpt_path} was made with a different config; use a new --out folder")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start_epoch = ck["epoch"]
        _set_rng_state(ck["rng"])
    if dd.is_main():
        cfg.save(out / "vae.json")
        atomic.write_text(out / "instruments.json", json.dumps(instruments, indent=1), file_mode=atomic.UMASK)
    forward = dd.wrap(model, TimbreVAE.__call__)  # the model itself in a world of one, else DDP (after the resume)
    bar = None
    if progress and dd.is_main():
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, desc="vae", dynamic_ncols=True)
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        batches = instrument_batches(
            train.instrument_names, cfg.batch_size, np.random.default_rng([cfg.seed, epoch]), cfg.notes_per_instrument
        )
        if dd.active:  # every rank needs notes of its own: a small last batch is left out (on every rank alike)
            batches = [b for b in batches if len(b) >= 2 * dd.world]
        running: dict[str, float] = {}
        t0 = time.time()
        for i, b in enumerate(batches):
            gamma = (epoch + i / len(batches)) / cfg.epochs
            dd.seed_step(cfg.seed, step)
            xb, pitch_b, vel_b, inst_b, fam_b = _batch(train, dd.shard(b))
            xb, inst_b = xb.to(device), inst_b.to(device)
            outp = forward(xb, pitch_b.to(device), vel_b.to(device))
            pitch_ix = (pitch_b - cfg.pitch_min).clamp(0, cfg.num_pitches - 1)
            loss, logs = vae_loss(cfg, outp, xb, pitch_ix.to(device), inst_b, fam_b.to(device), gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            logs = dd.mean(logs)
            for k, v in logs.items():
                running[k] = running.get(k, 0.0) + v
            if bar is not None:
                n = i + 1
                bar.set_postfix({k: f"{v / n:.3g}" for k, v in running.items()}, refresh=False)
                bar.update(1)
            if max_steps is not None and step >= max_steps:
                break
        n = max(1, len(batches) if max_steps is None else i + 1)
        record = {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 2)}
        record.update({k: round(v / n, 6) for k, v in running.items()})
        if dd.is_main():
            _save_epoch(out, model, opt, sched, epoch + 1, cfg, record)
        if on_epoch is not None:
            on_epoch(epoch + 1, record)
        if max_steps is not None and step >= max_steps:
            break
    if bar is not None:
        bar.close()
    model.eval()
    if dd.is_main():
        save_vae(model, out)
    dd.barrier()  # every rank returns once rank 0's files are written (a next command may read them)
    return model


def _save_epoch(out: Path, model: TimbreVAE, opt, sched, epoch: int, cfg: VAEConfig, record: dict) -> None:
    """The end of an epoch on disk: its log line, the resume checkpoint and the weights (rank 0 only)."""
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    save_torch(
        {
            "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "epoch": epoch, "rng": _rng_state(), "config": json.loads(cfg.to_json()),
        },
        out / "ckpt.pt",
    )
    save_vae(model, out)
