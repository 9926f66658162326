"""Run under ``torchrun --nproc_per_node=2`` by tests/test_distributed.py: the four training commands in one process
group, with probes that record what each rank saw and wrote.

Why one driver for four commands: a torchrun launch costs ~5 s of start-up on the 2-core CI machine; the commands
reuse the process group the driver opened (``synth.distributed.session`` leaves an open group alone).

Probes (test-only monkeypatches, installed before the commands run):
- ``Dist.shard``: each rank's share of every global batch, per trainer (did the ranks see different data?);
- file writes (``open``/``io.open`` for writing, ``os.replace``/``os.rename``/``os.mkdir``) under the run folder;
- each trainer's final weights on each rank (identical weights?).
Usage: ``python -m tests.ddp_driver <spec.json>``; the spec names the data, the run folder, the probe folder and the
commands of this launch. Each rank writes ``<probe>/<phase>-rank<r>.json`` and ``<phase>-<name>-rank<r>.pt``.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from synth import distributed
from synth.cli import main

_real_open = builtins.open
_real_io_open = io.open


class Probe:
    """What this rank did: its batch shards per trainer, its writes under ``root``, its final weights."""

    def __init__(self, root: Path):
        self.root = str(root.resolve())
        self.tag = ""
        self.shards: dict[str, list[list[int]]] = {}
        self.writes: list[str] = []
        self.weights: dict[str, dict[str, torch.Tensor]] = {}
        self.vae_kwargs: dict = {}  # injected into train_vae (max_steps: stop as if the job were killed)

    def wrote(self, path: Any, mode: str = "w") -> None:
        if isinstance(path, int) or not any(c in mode for c in "wax+"):
            return
        p = os.path.abspath(os.fspath(path))
        if p.startswith(self.root):
            self.writes.append(p)

    def install(self) -> None:
        probe = self
        shard = distributed.Dist.shard

        def recording_shard(self_: distributed.Dist, x):
            part = shard(self_, x)
            probe.shards.setdefault(probe.tag, []).append([int(v) for v in part.tolist()])
            return part

        distributed.Dist.shard = recording_shard

        def watched(real: Callable) -> Callable:
            def opener(file, mode="r", *args, **kwargs):
                probe.wrote(file, mode)
                return real(file, mode, *args, **kwargs)
            return opener

        builtins.open, io.open = watched(_real_open), watched(_real_io_open)
        for name in ("replace", "rename"):
            real = getattr(os, name)
            setattr(os, name, lambda src, dst, *a, _r=real, **k: (probe.wrote(dst), _r(src, dst, *a, **k))[1])
        real_mkdir = os.mkdir

        def mkdir(path, *args, **kwargs):
            if not os.path.exists(path):  # Path.mkdir(exist_ok=True) of an existing folder creates nothing
                probe.wrote(path)
            return real_mkdir(path, *args, **kwargs)

        os.mkdir = mkdir
        self._capture_weights()

    def _capture_weights(self) -> None:
        """Keep each trainer's final model: the model trainers return it; the codec trainer returns a summary, so its
        model is taken from the loss function it calls every step."""
        import synth.codec.train as codec_train
        import synth.model.train_flow as tf
        import synth.model.train_generator as tg
        import synth.model.train_vae as tv

        probe = self

        def keep(module, name: str, inject: Callable[[dict], None] = lambda kw: None) -> None:
            real = getattr(module, name)

            def wrapper(*args, **kwargs):
                inject(kwargs)
                model = real(*args, **kwargs)
                probe.weights[probe.tag] = {k: v.detach().clone() for k, v in model.state_dict().items()}
                return model

            setattr(module, name, wrapper)

        keep(tv, "train_vae", lambda kw: kw.update(probe.vae_kwargs))
        keep(tg, "train_generator")
        keep(tf, "train_flow")
        real_losses = codec_train.compute_losses

        def losses(model, *args, **kwargs):
            probe.weights[probe.tag] = model.state_dict()  # live tensors: the final weights once training ends
            return real_losses(model, *args, **kwargs)

        codec_train.compute_losses = losses

    def save(self, probe_dir: Path, phase: str, rank: int) -> None:
        builtins.open, io.open = _real_open, _real_io_open
        for tag, sd in self.weights.items():
            torch.save({k: v.detach().clone() for k, v in sd.items()}, probe_dir / f"{phase}-{tag}-rank{rank}.pt")
        (probe_dir / f"{phase}-rank{rank}.json").write_text(json.dumps({"shards": self.shards, "writes": self.writes}))


def run(spec: dict) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    probe = Probe(Path(spec["root"]))
    probe.install()
    for tag, argv, options in spec["commands"]:
        probe.tag = tag
        probe.vae_kwargs = options.get("vae_kwargs", {})
        code = main(argv)
        if code != 0:
            raise SystemExit(f"rank {rank}: {tag} exited {code}")
    probe.save(Path(spec["probe"]), spec["phase"], rank)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(json.loads(Path(sys.argv[1]).read_text()))
