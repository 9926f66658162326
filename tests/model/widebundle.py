"""A tiny random bundle over the whole keyboard (MIDI 21-108) with velocity-conditioned networks and a flow sampler:
``build_tiny_bundle``'s networks with the wide data's pitch range and velocity layers (tests of the eval and bench
over 88 keys)."""

from __future__ import annotations

import dataclasses
from pathlib import Path


def build_wide_tiny_bundle(out: Path, num_frames: int = 24, seed: int = 0) -> Path:
    import torch

    from synth.model.bundle import build_tiny_bundle, load_bundle, save_bundle
    from synth.model.flow import FlowNet
    from synth.model.generator import Generator
    from synth.model.vae import TimbreVAE

    src = build_tiny_bundle(Path(out).with_name(Path(out).name + "_src"), seed=seed, num_frames=num_frames, flow=True)
    b = load_bundle(src, device="cpu")
    wide = {"pitch_min": 21, "pitch_max": 108}
    torch.manual_seed(seed)
    vae = TimbreVAE(dataclasses.replace(b.vae.cfg, velocity_cond=True, **wide)).eval()
    gen = Generator(dataclasses.replace(b.generator.cfg, velocity_cond=True, **wide)).eval()
    flow = FlowNet(dataclasses.replace(b.flow.cfg, **wide)).eval()
    save_bundle(out, src / "codec", vae, gen, b.stats, b.instruments, {"notes": 0, "source": "random weights"},
                {"tiny": True, "play_path": "flow"}, flow=flow)
    return Path(out)
