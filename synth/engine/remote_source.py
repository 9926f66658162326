"""``RemoteModelSource``: the model runs in a process of its own, so its torch kernels never hold the audio
callback's interpreter (issue 19, "the app must not drop audio").

Why: PyTorch runs its CPU kernels holding the GIL. Measured with a probe thread beside a thread decoding preview
notes with the codec: waits up to 4-7 ms for the interpreter, the length of a 256-frame block; the app's callback
waited up to 7.7 ms and overran its block while held notes followed a drag (``synth bench app``).

How: ``python -m synth.engine.remote_source`` is started and connects back three times over a local socket
(``synth.engine.child``): one connection for exact notes (the generation worker thread), one for previews
(the preview thread), one for control (the "character" setting, anchors). The child holds one ``ModelNoteSource``,
serves each connection on its own thread, and exits when the parent's ends close (the parent died or closed it).
Arrays travel pickled (a 4-note preview is ~1 MB: a memcpy here). The parent never imports torch for this source.

Opt-in (``Engine.from_bundle(..., separate_process=True)`` or ``SYNTH_GENERATION_PROCESS=1``) until it has been
measured in the app for longer.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from synth.engine.child import close_all, connect_back, kill, spawn_connected, wait_or_kill
from synth.engine.model_source import settings_of

CHANNELS = ("generate", "preview", "control")
KEY_ENV = "SYNTH_REMOTE_KEY"


class RemoteError(RuntimeError):
    """The generation process failed or went away; the message names the bundle."""


class RemoteModelSource:
    def __init__(self, path: str | Path, device: str | None = None, timeout: float = 600.0) -> None:
        self.path = Path(path)
        self._proc, self._conns = spawn_connected("synth.engine.remote_source", [str(self.path), device or ""],
                                                  CHANNELS, KEY_ENV, 60.0, RemoteError,
                                                  f"{self.path}: the generation process")
        self._locks = {name: threading.Lock() for name in CHANNELS}
        conn = self._conns["control"]
        if not conn.poll(timeout):
            self.close()
            raise RemoteError(f"{self.path}: the generation process did not load the bundle in {timeout:.0f} s")
        status, info = conn.recv()
        if status != "ok":
            self.close()
            raise RemoteError(f"{self.path}: {info}")
        for name in ("sample_rate", "hash", "held_seconds", "label"):
            setattr(self, name, info[name])
        self.pitch_range = tuple(info["pitch_range"])
        self.velocity_layers = tuple(info["velocity_layers"])
        self.map_bounds = info["map_bounds"]
        self.info = info["bundle_info"]
        self.instruments = tuple(info["instruments"])
        self.play_path = str(info["play_path"])
        self.device = str(info["device"])
        self._guidance = float(info["guidance"])
        self._steps = info["steps"]
        self._sampler = info["sampler"] if info["has_flow"] else ""
        self._layer_noise = str(info.get("layer_noise", "per_layer"))

    @property
    def returncode(self) -> int | None:
        """The generation process's exit status once it has ended (None while it runs)."""
        return self._proc.poll()

    @property
    def character(self) -> float | None:
        """The flow sampler's guidance; None for other play paths."""
        return self._guidance if self.play_path == "flow" else None

    def set_character(self, guidance: float) -> None:
        self._call("control", "set_character", float(guidance))
        self._guidance = float(guidance)

    # ------------------------------------------------------------------------------------------------ calls
    def _call(self, channel: str, method: str, *args):
        with self._locks[channel]:
            conn = self._conns.get(channel)
            if conn is None:
                raise RemoteError(f"{self.path}: the generation process is closed")
            try:
                conn.send((method, args))
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                raise RemoteError(f"{self.path}: the generation process went away ({exc})") from None
        if status != "ok":
            raise RemoteError(value)
        return value

    @property
    def generation_settings(self) -> str:
        if self.play_path != "flow":
            return settings_of(self.play_path)
        return settings_of("flow", self._guidance, self._steps, self._sampler, self._layer_noise)

    def generate_with_frames(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100):
        return self._call("generate", "generate_with_frames", (float(xy[0]), float(xy[1])), [int(p) for p in pitches],
                          int(velocity))

    def generate(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        return self.generate_with_frames(xy, pitches, velocity)[0]

    def preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100) -> np.ndarray:
        return self._call("preview", "preview", (float(xy[0]), float(xy[1])), [int(p) for p in pitches], int(velocity))

    def preview_tail(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100,
                     start_s: float = 0.0) -> tuple[int, np.ndarray]:
        offset, audio = self._call("preview", "preview_tail", (float(xy[0]), float(xy[1])),
                                   [int(p) for p in pitches], int(velocity), float(start_s))
        return int(offset), audio

    def refine_preview(self, xy: Sequence[float], pitches: Sequence[int], velocity: int = 100, tag=None,
                       fresh: bool = False):
        """One step of a refined preview in the model's process (``ModelNoteSource.refine_preview``); ``tag`` must
        pickle (the worker's serial, an int)."""
        out = self._call("preview", "refine_preview", (float(xy[0]), float(xy[1])), [int(p) for p in pitches],
                         int(velocity), tag, bool(fresh))
        return None if out is None else (out[0], bool(out[1]))

    def add_anchors(self, xy, pitches, velocity: int, frames: np.ndarray) -> None:
        self._call("control", "add_anchors", (float(xy[0]), float(xy[1])), [int(p) for p in pitches], int(velocity),
                   np.asarray(frames, np.float32))

    def anchor_count(self) -> int:
        return int(self._call("control", "anchor_count"))

    def close(self) -> None:
        close_all(self._conns)
        self._conns = {}
        wait_or_kill(self._proc, 5.0)

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            kill(proc)


# ---------------------------------------------------------------------------------------------------- the child
def _serve(conn, source, lock_free: bool) -> None:
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            os._exit(0)  # the parent closed or died: no teardown (torch threads), just go
        try:
            value = getattr(source, method)(*args)
            if method == "set_character":
                value = None
            conn.send(("ok", value))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the process keeps serving
            conn.send(("err", f"{source.label}: {type(exc).__name__}: {exc}"[:2000]))


class _Handler:
    def __init__(self, source) -> None:
        self.source = source
        self.label = source.label

    def generate_with_frames(self, xy, pitches, velocity):
        return self.source.generate_with_frames(xy, pitches, velocity)

    def preview(self, xy, pitches, velocity):
        return self.source.preview(xy, pitches, velocity)

    def preview_tail(self, xy, pitches, velocity, start_s):
        return self.source.preview_tail(xy, pitches, velocity, start_s)

    def refine_preview(self, xy, pitches, velocity, tag, fresh):
        return self.source.refine_preview(xy, pitches, velocity, tag, fresh)

    def add_anchors(self, xy, pitches, velocity, frames):
        return self.source.add_anchors(xy, pitches, velocity, frames)

    def anchor_count(self):
        return self.source.anchor_count()

    def set_character(self, guidance):
        self.source.set_character(guidance)


def _child_main(address: str, path: str, device: str) -> None:
    conns = connect_back(address, CHANNELS, KEY_ENV)
    try:
        import torch

        torch.set_num_threads(1)  # one core for the model, one for the audio and the window (2-core machines)
        from synth.engine.model_source import load_model_source

        source = load_model_source(path, device or None, spare_core=False)
        synth = source.synthesizer
        bundle = source.bundle
        flow = getattr(synth, "flow", None)
        info = {"sample_rate": source.sample_rate, "hash": source.hash, "held_seconds": source.held_seconds,
                "label": source.label, "pitch_range": list(source.pitch_range),
                "velocity_layers": list(source.velocity_layers), "map_bounds": source.map_bounds,
                "play_path": synth.play_path, "guidance": synth.guidance, "steps": synth.steps,
                "device": str(synth.device), "has_flow": flow is not None,
                "sampler": str(getattr(getattr(flow, "cfg", None), "sampler", "")),
                "layer_noise": str(getattr(getattr(flow, "cfg", None), "layer_noise", "per_layer")),
                "bundle_info": dict(getattr(bundle, "info", {}) or {}), "instruments": tuple(bundle.instruments)}
    except Exception as exc:  # noqa: BLE001 - the parent raises it with the bundle's name
        conns["control"].send(("err", f"{type(exc).__name__}: {exc}"[:2000]))
        os._exit(1)
    conns["control"].send(("ok", info))
    handler = _Handler(source)
    threads = [threading.Thread(target=_serve, args=(conns[name], handler, False), daemon=True) for name in CHANNELS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
