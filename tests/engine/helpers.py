"""Small helpers the engine tests share: polling for a condition, and a tiny seeded bundle opened as the app does."""

from __future__ import annotations

import time


def wait(pred, timeout: float = 20.0) -> bool:
    """Poll ``pred`` every 10 ms until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()


def open_tiny_bundle(tmp_path_factory, flow: bool):
    """A tiny seeded bundle (flow or MSE-generator play path) opened in this process on the CPU, no disk cache."""
    from synth.engine.bundle_source import open_bundle
    from synth.model.bundle import build_tiny_bundle

    path = build_tiny_bundle(tmp_path_factory.mktemp("b") / "tiny", seed=3, flow=flow)
    return open_bundle(path, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
