"""Change how a built bundle's flow sampler *samples* (not what it learned): guidance, steps, sampler, time shift,
and the noise layout (``layer_noise``, ``noise_lattice``, ``seed_step``, ``noise_seed``), in ``bundle.json``'s
``flow_config``.

Why: these settings are read at generation time only (the trainer draws its own noise and times), so a measured
better setting can ship without retraining; ``synth train flow --set`` gives a new run the same value, and the
recipe records it. The weights and the map stay, so the bundle hash (a hash of the files) and the presets' map
stay valid; the engine's note caches tell the notes apart by the generation settings (``settings_of``). Any other
field (the network's shape, its training options) is refused. The result is loaded with the one-note probe before
the change is kept; on any failure ``bundle.json`` is restored byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from synth.atomic import UMASK, write_bytes, write_text
from synth.model.bundle import BUNDLE_JSON, BundleError, load_bundle, read_bundle_info
from synth.model.overrides import apply_overrides

SAMPLING_FIELDS = ("guidance", "sample_steps", "sampler", "time_shift", "layer_noise", "noise_lattice", "seed_step",
                   "noise_seed")


def tune_flow(bundle_dir: str | Path, items: list[str]) -> dict:
    """Apply ``KEY=VALUE`` items (keys of ``SAMPLING_FIELDS``) to the bundle's flow_config; returns what changed."""
    from synth.model.flow import FlowConfig

    bundle_dir = Path(bundle_dir)
    path = bundle_dir / BUNDLE_JSON
    info = read_bundle_info(bundle_dir)
    if not isinstance(info.get("flow_config"), dict):
        raise BundleError(f"{path}: this bundle has no flow sampler (no 'flow_config') to tune")
    keys = [item.partition("=")[0] for item in items]
    bad = [k for k in keys if k not in SAMPLING_FIELDS]
    if bad or not items:
        raise BundleError(f"{path}: can tune only the sampling settings {', '.join(SAMPLING_FIELDS)}"
                          + (f", not {', '.join(bad)}" if bad else " (give at least one KEY=VALUE)"))
    cfg = FlowConfig(**{k: v for k, v in info["flow_config"].items()
                        if k in {f.name for f in dataclasses.fields(FlowConfig)}})
    before = {k: getattr(cfg, k) for k in keys}
    try:
        apply_overrides(cfg, items)
        cfg.__post_init__()
        cfg.validate()
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: {exc}") from None
    after = {k: getattr(cfg, k) for k in keys}
    original = path.read_bytes()
    new_info = {**info, "flow_config": {**info["flow_config"], **json.loads(json.dumps(after))}}
    try:
        write_text(path, json.dumps(new_info, indent=1), file_mode=UMASK)
        load_bundle(bundle_dir, device="cpu")  # configs, hashes, weights and the one-note probe
    except BaseException:
        write_bytes(path, original, file_mode=UMASK)
        raise
    return {"bundle": str(bundle_dir), "hash": info.get("hash"), "before": before, "after": after}


__all__ = ["SAMPLING_FIELDS", "tune_flow"]
