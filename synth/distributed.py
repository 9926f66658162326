"""Multi-process training with torch DDP, launched by ``torchrun`` (one process per GPU, or per CPU share on gloo).

Why one small module: the four trainers (codec, VAE, generator, flow) need the same few pieces, and the codec package
must not import from ``synth.model`` (imports flow model/codec -> data; this module imports only torch and numpy).

The contract every trainer keeps:
- Without torchrun (no ``WORLD_SIZE`` > 1 in the environment) nothing changes: ``context()`` is a world of one, every
  helper returns its input untouched and no collective is called, so losses and weights are bit-identical to a run
  without this module.
- Under torchrun each rank draws the SAME global batch from the same seeded generator and keeps its own contiguous
  share (``shard``), so a global batch of ``batch_size`` keeps its meaning and the recipe needs no change; DDP
  averages the gradients, so every rank applies the same update and holds the same weights (and the same EMA).
- Rank 0 alone writes checkpoints, logs and exports and shows a progress bar (``is_main``); every rank loads the same
  checkpoint on resume. Anything that depends on a clock (the ``--minutes`` budget, a time-based learning rate) is
  decided on rank 0 and broadcast (``agree``, ``from_main``), so no rank stops early and hangs the others.
- Per-example randomness (flow noise, dropout, condition noise) must differ between ranks: ``seed_step`` reseeds the
  global RNG from (seed, step, rank) and ``step_generator`` gives a per-rank generator, both only when world > 1.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T", torch.Tensor, np.ndarray)

# Rank 0 may validate and write checkpoints while the others wait in the next all-reduce: allow it plenty of time.
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank, the world size, and the device it trains on."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def active(self) -> bool:
        return self.world > 1

    def is_main(self) -> bool:
        """Rank 0 (or the only process): the one that saves, logs and prints."""
        return self.rank == 0

    def shard(self, x: T) -> T:
        """This rank's contiguous share of a global batch (along dim 0); the whole batch in a world of one.
        Contiguous, not strided: the VAE's batches are runs of same-instrument groups, which stay mostly whole."""
        if not self.active:
            return x
        if isinstance(x, torch.Tensor):
            return torch.tensor_split(x, self.world)[self.rank]
        return np.array_split(x, self.world)[self.rank]

    def agree(self, flag: bool) -> bool:
        """Rank 0's value of ``flag`` on every rank (e.g. "the time budget is spent"): ranks that stopped at
        different steps would wait forever in the next all-reduce."""
        if not self.active:
            return flag
        return bool(self.from_main(float(flag)))

    def from_main(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (e.g. the elapsed training time a learning-rate schedule reads)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, src=0)
        return float(t.item())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over ranks of each logged number (each rank's loss is over its own share): one collective."""
        if not self.active or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def seed_step(self, seed: int, step: int) -> None:
        """Reseed the global torch RNG per (seed, step, rank) so dropout and noise differ between ranks and a resumed
        run draws what an uninterrupted one would; a no-op in a world of one (its RNG stream stays as it was)."""
        if self.active:
            torch.manual_seed(_mix(seed, step, self.rank))

    def step_generator(self, gen: torch.Generator, seed: int, step: int) -> torch.Generator:
        """The generator a step's per-example randomness comes from: ``gen`` itself in a world of one; under DDP a
        per-rank one seeded from (seed, step, rank), because ``gen`` must stay identical on every rank to draw the
        same global batches next step."""
        if not self.active:
            return gen
        return torch.Generator().manual_seed(_mix(seed, step, self.rank))

    def wrap(self, model: nn.Module, loss_fn: Callable[..., Any]) -> Callable[..., Any]:
        """``loss_fn(model, *args)`` as a callable of ``*args``, run inside DDP's forward under torchrun.

        Why through forward: DDP prepares its gradient all-reduce in ``forward``; the trainers' losses call other
        methods too (``encode``/``decode``, ``rollout``), which DDP would not see. Call this after the checkpoint is
        loaded (DDP broadcasts rank 0's weights when it wraps)."""
        if not self.active:
            return functools.partial(loss_fn, model)
        ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return nn.parallel.DistributedDataParallel(_LossModule(model, loss_fn), device_ids=ids)

    def _comm_device(self) -> str:
        return self.device if self.device.startswith("cuda") else "cpu"


class _LossModule(nn.Module):
    """A model plus the function that computes its training loss, so that DDP can wrap the pair."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Any]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.loss_fn(self.model, *args, **kwargs)


def _mix(seed: int, step: int, rank: int) -> int:
    """A 63-bit seed from (seed, step, rank) with no easy collisions between neighbouring steps and ranks."""
    words = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step), int(rank), 0x5EED]).generate_state(1, np.uint64)
    return int(words[0] >> 1)


def launched() -> bool:
    """True when torchrun (or any env:// launcher) started more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def main_process() -> bool:
    """Rank 0 of a torchrun launch, or a process on its own: readable before the process group starts, so that the
    command lines print their messages once, not once per rank."""
    return int(os.environ.get("RANK", "0")) == 0


def context(device: str | torch.device = "cpu") -> Dist:
    """This process's place: from the initialised process group, else a world of one on ``device``."""
    device = str(device)
    if not (dist.is_available() and dist.is_initialized()):
        return Dist(device=device)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


@contextlib.contextmanager
def session(device: str) -> Iterator[Dist]:
    """Set up training for this process and tear it down at the end (also on errors).

    Under torchrun: init the process group from the environment (nccl when ``device`` is cuda, then each rank on
    ``cuda:LOCAL_RANK``; gloo on the CPU) unless a caller already did, in which case it is used and left open.
    Without torchrun: a world of one on ``device``, nothing initialised."""
    if not launched() or dist.is_initialized():
        yield context(local_device(device) if dist.is_initialized() else device)
        return
    device = local_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=TIMEOUT)
    try:
        yield context(device)
    finally:
        dist.destroy_process_group()


def local_device(device: str) -> str:
    """Under torchrun: ``cuda`` -> ``cuda:LOCAL_RANK`` (one GPU per process), made the current CUDA device so that
    nothing of this process lands on GPU 0; other devices, and any device without torchrun, as given. The command
    lines call it before their first CUDA use (the flow CLI encodes the timbre points before training)."""
    if not launched() or not device.startswith("cuda"):
        return device
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    torch.cuda.set_device(torch.device(device))
    return device
