"""The flow sampler inside a bundle: listed and hash-checked like every weight, played through the Synthesizer's
"flow" path with the point-seeded noise (one point = one instrument), the guidance ("character") and velocity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synth.engine.synthesizer import Synthesizer
from synth.model.bundle import BUNDLE_JSON, FLOW_FILE, BundleError, build_tiny_bundle, load_bundle


@pytest.fixture(scope="module")
def flow_bundle(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("flowb") / "b", flow=True)


def _synth(path) -> Synthesizer:
    torch.set_num_threads(1)
    synth = Synthesizer(load_bundle(path, device="cpu"), device="cpu")
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # adaLN-Zero starts unconditional: make the condition matter, reproducibly
        for p in synth.flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return synth


def test_bundle_lists_flow_and_its_config_and_plays_it(flow_bundle):
    info = json.loads((flow_bundle / BUNDLE_JSON).read_text())
    assert FLOW_FILE in info["files"] and info["play_path"] == "flow" and "flow_config" in info
    assert info["velocity_layers"] == [40, 70, 100, 127]
    synth = Synthesizer(load_bundle(flow_bundle, device="cpu"), device="cpu")
    assert synth.play_path == "flow" and synth.velocity_layers == (40, 70, 100, 127)
    audio = synth.generate((0.1, 0.2), [60, 61], 100)
    assert audio.shape == (2, synth.num_samples) and np.isfinite(audio).all()


def test_a_changed_flow_file_is_refused(flow_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(flow_bundle, copy)
    state = torch.load(copy / FLOW_FILE, weights_only=True)
    key = next(iter(state))
    state[key] = state[key] + 1.0
    torch.save(state, copy / FLOW_FILE)
    with pytest.raises(BundleError, match="flow.pt"):
        load_bundle(copy, device="cpu")


def test_flow_play_path_needs_the_flow_listed(flow_bundle, tmp_path):
    import shutil

    from synth.model.bundle import _content_hash

    copy = tmp_path / "b"
    shutil.copytree(flow_bundle, copy)
    info = json.loads((copy / BUNDLE_JSON).read_text())
    del info["files"][FLOW_FILE]
    info["hash"] = _content_hash(info["files"])
    (copy / BUNDLE_JSON).write_text(json.dumps(info))
    with pytest.raises(BundleError, match="flow.pt is not listed"):
        load_bundle(copy, device="cpu")
    del info["flow_config"]
    (copy / BUNDLE_JSON).write_text(json.dumps(info))
    with pytest.raises(BundleError, match="play_path"):
        load_bundle(copy, device="cpu")


def test_one_point_is_one_instrument_and_the_controls_change_the_sound(flow_bundle):
    synth = _synth(flow_bundle)
    a = synth.generate((0.1, 0.2), [55, 60, 65], 100)
    assert np.array_equal(a, synth.generate((0.1, 0.2), [55, 60, 65], 100))  # deterministic per point
    # a key sounds the same in any batch (to float rounding of the batched matmuls, which the oscillator phase
    # integrates over the note)
    alone = synth.generate((0.1, 0.2), [60], 100)[0]
    assert np.linalg.norm(a[1] - alone) < 1e-3 * np.linalg.norm(alone)
    assert not np.allclose(a, synth.generate((-0.5, 0.4), [55, 60, 65], 100))
    assert not np.allclose(a, synth.generate((0.1, 0.2), [55, 60, 65], 40))  # another velocity layer
    assert np.array_equal(a, synth.generate((0.1, 0.2), [55, 60, 65], 96))  # the same layer (100)
    plain = synth.generate_flow((0.1, 0.2), [60], guidance=1.0)
    assert not np.allclose(plain, synth.generate_flow((0.1, 0.2), [60], guidance=4.0))
    synth.set_character(4.0)
    assert np.array_equal(synth.generate((0.1, 0.2), [60], 100), synth.generate_flow((0.1, 0.2), [60], guidance=4.0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 100.0])
def test_character_is_validated(flow_bundle, bad):
    synth = Synthesizer(load_bundle(flow_bundle, device="cpu"), device="cpu")
    with pytest.raises(ValueError, match="guidance"):
        synth.set_character(bad)
    with pytest.raises(ValueError, match="guidance"):
        synth.generate_flow((0.0, 0.0), [60], guidance=bad)


def test_bundles_without_flow_keep_one_layer_and_refuse_the_flow_path(tmp_path):
    path = build_tiny_bundle(tmp_path / "plain")
    info = json.loads((path / BUNDLE_JSON).read_text())
    assert "flow_config" not in info and info["velocity_layers"] == [100] and FLOW_FILE not in info["files"]
    synth = Synthesizer(load_bundle(path, device="cpu"), device="cpu")
    assert synth.velocity_layers == (100,) and synth.flow is None
    with pytest.raises(ValueError, match="no flow"):
        synth.generate_flow((0.0, 0.0), [60])
