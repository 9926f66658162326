"""Multi-process training: ``torchrun --standalone --nproc_per_node=2`` (gloo, one thread per process) runs the codec,
VAE, generator and flow commands on tiny inputs, then resumes each; tests/ddp_driver.py records per rank what was
sampled, written and learned. Two launches (20-35 s in all on the 2-core CI machine, most of it start-up)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from tests.model.fakecache import write_fake_audio, write_fake_cache
from tests.model.test_pipeline_cli import TINY_GEN, TINY_VAE

REPO = Path(__file__).resolve().parents[1]
TINY_FLOW = ["--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "patch=4",
             "--set", "batch_size=8", "--set", "warmup_steps=2", "--set", "context_min=4", "--set", "context_max=12",
             "--set", "context_shift_max=8", "--set", "context_frames=8"]
TINY_CODEC = ["--arch", "harmonic", "--batch-size", "4", "--crop-seconds", "0.5", "--lr", "3e-3",
              "--teacher-f0-steps", "2", "--dim", "16", "--enc-filters", "4", "--enc-lstm", "0", "--hidden", "32",
              "--n-blocks", "2", "--n-harmonics", "24", "--n-noise-bands", "16", "--emb-norm", "--threads", "1",
              "--no-progress"]  # --emb-norm: a BatchNorm, whose buffers must stay alike on the ranks too


def _launch(tmp: Path, phase: str, commands: list) -> None:
    (tmp / "probe").mkdir(exist_ok=True)
    spec = {"root": str(tmp / "runs"), "probe": str(tmp / "probe"), "phase": phase, "commands": commands}
    path = tmp / f"{phase}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "tests.ddp_driver", str(path)]
    # a session of its own: on a timeout the launcher AND its workers go (a worker stuck in a collective would
    # otherwise outlive the test)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == 0, out[-3000:] + err[-6000:]


def _probe(tmp: Path, phase: str, rank: int) -> dict:
    return json.loads((tmp / "probe" / f"{phase}-rank{rank}.json").read_text())


def _weights(tmp: Path, phase: str, tag: str, rank: int) -> dict:
    return torch.load(tmp / "probe" / f"{phase}-{tag}-rank{rank}.pt", weights_only=True)


def _check_ranks(tmp: Path, phase: str, tags: list[str]) -> None:
    """Only rank 0 wrote; the ranks drew different shares of each batch; they ended with identical weights."""
    r0, r1 = _probe(tmp, phase, 0), _probe(tmp, phase, 1)
    assert r1["writes"] == [] and len(r0["writes"]) > 0
    for tag in tags:
        a, b = r0["shards"][tag], r1["shards"][tag]
        assert len(a) == len(b) > 0 and a != b, tag
        w0, w1 = _weights(tmp, phase, tag, 0), _weights(tmp, phase, tag, 1)
        assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0), tag
    # the VAE draws notes without replacement in an epoch: each batch is split into disjoint shares
    if "vae" in tags:
        assert all(not set(x) & set(y) for x, y in zip(r0["shards"]["vae"], r1["shards"]["vae"]))


def test_torchrun_two_processes_train_and_resume(tmp_path):
    emb = write_fake_cache(tmp_path / "emb")
    notes = write_fake_audio(tmp_path / "notes", emb, splits=("train", "valid"), seconds=1.0, note_off_s=0.7,
                             keep=lambda split, m: m["pitch"] in (48, 60, 72) and m["instrument_str"][-1] in "012")
    runs = tmp_path / "runs"
    codec = ["codec", "train", "--data", str(notes), "--audio-cache", str(runs / "audio"), *TINY_CODEC]
    vae = ["train", "vae", "--emb", str(emb), "--out", str(runs / "vae"), "--epochs", "2", "--no-progress",
           "--threads", "1", *TINY_VAE]
    stage2 = ["--emb", str(emb), "--vae", str(runs / "vae"), "--valid-every", "2", "--valid-notes", "8",
              "--no-progress", "--threads", "1"]
    gen = ["train", "generator", *stage2, "--out", str(runs / "gen")]
    flow = ["train", "flow", *stage2, "--valid-every", "100"]
    # launch 1: the VAE is stopped after its first epoch (4 batches of 50), as if the job had been killed there;
    # flow "a" trains 4 steps in one go, flow "b" 2 steps (resumed below)
    _launch(tmp_path, "fresh", [
        ["codec", [*codec, "--out", str(runs / "codec"), "--steps", "3"], {}],
        ["vae", vae, {"vae_kwargs": {"max_steps": 4}}],
        ["gen", [*gen, "--steps", "2", *TINY_GEN], {}],
        ["flow_a", [*flow, "--out", str(runs / "flow_a"), "--steps", "4", *TINY_FLOW], {}],
        ["flow_b", [*flow, "--out", str(runs / "flow_b"), "--steps", "2", *TINY_FLOW], {}],
        # a time budget (1.2 s) instead of a step count: rank 0's clock decides, both ranks stop at the same step
        ["flow_t", [*flow, "--out", str(runs / "flow_t"), "--minutes", "0.02", *TINY_FLOW], {}],
        ["codec_t", [*codec, "--out", str(runs / "codec_t"), "--minutes", "0.02"], {}],
    ])
    _check_ranks(tmp_path, "fresh", ["codec", "vae", "gen", "flow_a", "flow_b", "flow_t", "codec_t"])
    assert 0 < json.loads((runs / "flow_t" / "log.jsonl").read_text().splitlines()[-1])["step"] < 2000
    assert [json.loads(x)["epoch"] for x in (runs / "vae" / "log.jsonl").read_text().splitlines()] == [1]
    # launch 2: every run resumes from its checkpoint (rank 0 wrote it, both ranks load it); flow "b" before the VAE
    # moves on, so that it resumes with the timbre points it started with
    _launch(tmp_path, "resume", [
        ["codec", [*codec, "--out", str(runs / "codec"), "--steps", "5"], {}],
        ["flow_b", [*flow, "--out", str(runs / "flow_b"), "--steps", "4"], {}],
        ["vae", vae, {}],
        ["gen", [*gen, "--steps", "4"], {}],
    ])
    _check_ranks(tmp_path, "resume", ["codec", "vae", "gen", "flow_b"])
    assert json.loads((runs / "codec" / "summary.json").read_text())["steps"] == 5
    assert [json.loads(x)["epoch"] for x in (runs / "vae" / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert [json.loads(x).get("step") for x in (runs / "gen" / "log.jsonl").read_text().splitlines()] == [0, 2, 4]
    # the codec resumed at step 3 and ran 2 steps (2 shard calls per batch: note indices and crop starts)
    assert len(_probe(tmp_path, "resume", 0)["shards"]["codec"]) == 2 * 2
    # interrupted at step 2 and resumed to 4 under DDP == 4 steps in one go (weights and EMA, bit for bit)
    for name in ("last.pt", "last_ema.pt"):
        a = torch.load(runs / "flow_a" / name, weights_only=True)
        b = torch.load(runs / "flow_b" / name, weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_world_of_one_changes_nothing(monkeypatch):
    """Without torchrun every helper hands back its input and no process group starts (single-process runs stay
    bit-identical to runs before multi-process training existed)."""
    import numpy as np

    from synth import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and distributed.main_process()
    with distributed.session("cpu") as dd:
        assert (dd.rank, dd.world, dd.device, dd.active, dd.is_main()) == (0, 1, "cpu", False, True)
        x, a = torch.arange(5), np.arange(5)
        assert dd.shard(x) is x and dd.shard(a) is a
        assert dd.agree(True) is True and dd.from_main(1.25) == 1.25 and dd.mean({"l": 0.5}) == {"l": 0.5}
        g = torch.Generator()
        assert dd.step_generator(g, 0, 3) is g
        state = torch.get_rng_state()
        dd.seed_step(0, 3)
        assert torch.equal(torch.get_rng_state(), state)
        model = torch.nn.Linear(2, 1)
        assert torch.equal(dd.wrap(model, lambda m, v: m(v) * 2)(torch.ones(1, 2)), model(torch.ones(1, 2)) * 2)
    assert not torch.distributed.is_initialized()
    # a torchrun launch of one process is a world of one too
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert not distributed.launched()
