"""``synth bundle tune``: the flow's sampling settings change in place, everything else is refused, and a failed
change leaves bundle.json byte for byte."""

from __future__ import annotations

import json

import pytest
import torch

from synth.cli import main
from synth.engine.model_source import load_model_source
from synth.model.bundle import BundleError, build_tiny_bundle, load_bundle
from synth.model.bundle_tune import tune_flow


@pytest.fixture()
def bundle(tmp_path):
    return build_tiny_bundle(tmp_path / "b", flow=True)


def test_shared_layer_noise_ships_without_retraining(bundle, capsys):
    before = load_bundle(bundle, device="cpu")
    src = load_model_source(bundle, "cpu", spare_core=False)
    old_settings = src.generation_settings
    assert main(["bundle", "tune", "--bundle", str(bundle), "--set", "layer_noise=shared"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["before"] == {"layer_noise": "per_layer"} and out["after"] == {"layer_noise": "shared"}
    after = load_bundle(bundle, device="cpu")
    assert after.hash == before.hash  # same weights and map: caches tell the notes apart by their settings
    assert json.loads((bundle / "bundle.json").read_text())["flow_config"]["layer_noise"] == "shared"
    tuned = load_model_source(bundle, "cpu", spare_core=False)
    assert tuned.synthesizer.flow.cfg.layer_noise == "shared"
    assert tuned.generation_settings != old_settings and tuned.generation_settings.endswith(":ln=shared")
    seen = []
    flow = tuned.synthesizer.flow
    real = flow.sample
    flow.sample = lambda noise, *a, **k: seen.append(noise) or real(noise, *a, **k)
    tuned.generate((0.1, 0.2), [60], 40)
    tuned.generate((0.1, 0.2), [60], 127)
    assert torch.equal(seen[0][0], seen[1][0])  # soft and hard notes of the point start from one noise


@pytest.mark.parametrize("item, why", [("d_model=64", "d_model"), ("layer_noise=per_note", "layer_noise"),
                                       ("guidance=banana", "guidance"), ("sample_steps=0", "sample_steps"), ("time_shift=nan", "time_shift"),
                                       ("nonsense", "sampling settings")])
def test_other_fields_and_bad_values_are_refused_and_leave_the_file_as_it_was(bundle, item, why):
    original = (bundle / "bundle.json").read_bytes()
    with pytest.raises(BundleError, match=why):
        tune_flow(bundle, [item])
    assert (bundle / "bundle.json").read_bytes() == original


def test_a_bundle_without_a_flow_is_refused(tmp_path, capsys):
    plain = build_tiny_bundle(tmp_path / "plain")
    assert main(["bundle", "tune", "--bundle", str(plain), "--set", "layer_noise=shared"]) == 2
    assert "no flow sampler" in capsys.readouterr().err


def test_every_source_of_a_tuned_bundle_names_the_same_settings(bundle, one_torch_thread):
    """In-process, lazy and separate-process sources key their cached notes alike, and apart from the untuned ones."""
    from synth.engine.bundle_source import open_bundle
    from synth.engine.lazy_source import lazy_model_source
    from synth.engine.remote_source import RemoteModelSource

    untuned = open_bundle(bundle, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
    old = untuned.generation_settings
    tune_flow(bundle, ["layer_noise=shared"])
    local = open_bundle(bundle, device="cpu", disk_cache=False, separate_process=False, spare_core=False)
    remote = RemoteModelSource(bundle)
    try:
        assert remote.generation_settings == local.generation_settings == lazy_model_source(bundle).generation_settings
        assert local.generation_settings != old
    finally:
        remote.close()
