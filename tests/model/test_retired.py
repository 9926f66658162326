"""Retired experiment options (synth.model.configio, ``<Config>.RETIRED``): a config holding one at its off value
loads as if it were not there (the shipped bundle, run folders and resume checkpoints written before the option
left); at any other value it is refused with a message that names the field, the value and where the experiment is
recorded, in bundle.json, a run folder, a resume checkpoint and ``--set`` alike."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from synth.model.bundle import BundleError, build_tiny_bundle, load_bundle
from synth.model.configio import RETIRED_RECORD, RetiredOptionError
from synth.model.data import synthetic_notes
from synth.model.flow import FlowConfig
from synth.model.generator import GeneratorConfig
from synth.model.overrides import apply_overrides
from synth.model.train_vae import train_vae
from synth.model.vae import VAEConfig
from tests.model.test_vae import tiny_cfg

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = (VAEConfig, GeneratorConfig, FlowConfig)
# a value that would switch each retired VAE option on (JSON form)
ON = {"repel_centroids": True, "decode_instrument_mean": True, "mix_groups": 1.0, "mix_lambda": [0.3, 0.7],
      "con_dim": 64, "con_temperature": 0.2, "w_con": 1.0}


def test_retired_options_are_gone_from_the_configs_and_recorded_on_the_card():
    assert set(VAEConfig.RETIRED) == set(ON)
    card = (ROOT / "models/default/MODEL_CARD.md").read_text()
    assert "## Retired experiments" in card
    for cls in CONFIGS:
        names = {f.name for f in dataclasses.fields(cls)}
        for key in cls.RETIRED:
            assert key not in names and f"`{key}`" in card, key


def test_the_shipped_bundle_configs_read_unchanged_less_the_retired_keys():
    info = json.loads((ROOT / "models/default/bundle.json").read_text())
    for cls, field in ((VAEConfig, "vae_config"), (GeneratorConfig, "generator_config"), (FlowConfig, "flow_config")):
        saved = info[field]
        back = json.loads(cls.from_json(json.dumps(saved)).to_json())
        kept = {k: v for k, v in saved.items() if k not in cls.RETIRED}
        assert {k: back[k] for k in kept} == kept  # every value the bundle states is the one the config holds
        assert not set(back) & set(cls.RETIRED)


@pytest.mark.parametrize("key", sorted(ON))
def test_a_retired_option_at_its_off_value_is_dropped(key):
    off = VAEConfig.RETIRED[key]
    data = json.loads(tiny_cfg().to_json()) | {key: list(off) if isinstance(off, tuple) else off}
    assert VAEConfig.from_json(json.dumps(data)) == tiny_cfg()


@pytest.mark.parametrize("key", sorted(ON))
def test_a_retired_option_switched_on_is_refused_naming_field_value_and_record(key):
    data = json.loads(tiny_cfg().to_json()) | {key: ON[key]}
    with pytest.raises(RetiredOptionError) as err:
        VAEConfig.from_json(json.dumps(data))
    text = str(err.value)
    assert f"VAEConfig.{key} = {ON[key]!r}" in text and "retired experiment" in text and RETIRED_RECORD in text
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("key, value", [("repel_centroids", 0), ("con_dim", False), ("mix_lambda", [0.25])])
def test_only_the_off_value_itself_counts_as_off(key, value):
    with pytest.raises(RetiredOptionError, match=key):
        VAEConfig.from_json(json.dumps({key: value}))


def test_a_run_folder_config_names_its_file(tmp_path):
    path = tmp_path / "vae.json"
    path.write_text(json.dumps(json.loads(tiny_cfg().to_json()) | {"con_dim": 64, "w_con": 1.0}))
    with pytest.raises(RetiredOptionError, match=f"{path}: VAEConfig.con_dim = 64"):
        VAEConfig.load(path)


def test_set_of_a_retired_option_is_a_clear_error_at_any_value():
    for item in ("mix_groups=1", "mix_groups=0", "decode_instrument_mean=true"):
        with pytest.raises(ValueError, match="retired experiment option.*no longer an option"):
            apply_overrides(VAEConfig(), [item])


def test_a_bundle_with_a_retired_option_switched_on_is_refused(tmp_path):
    tiny = build_tiny_bundle(tmp_path / "tiny", seed=0)
    info = json.loads((tiny / "bundle.json").read_text())
    off = {k: (list(v) if isinstance(v, tuple) else v) for k, v in VAEConfig.RETIRED.items()}
    info["vae_config"].update(off)  # as bundles written before the retirement hold them
    (tiny / "bundle.json").write_text(json.dumps(info))
    assert load_bundle(tiny, device="cpu").vae.cfg == VAEConfig.from_json(json.dumps(info["vae_config"]))
    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    info["vae_config"]["repel_centroids"] = True
    (bad / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match=r"bundle\.json: field 'vae_config': VAEConfig\.repel_centroids = True: "
                                          r"repel_centroids was a retired experiment"):
        load_bundle(bad, device="cpu")


def test_a_checkpoint_written_before_the_retirement_resumes_and_one_with_the_option_on_is_refused(tmp_path):
    notes = synthetic_notes(6, num_frames=24, dim=8, time_pool=2, seed=1)
    cfg, classes = tiny_cfg(), sorted(set(notes.instrument_names))
    train_vae(notes, cfg, tmp_path / "run", classes, progress=False, max_steps=2)
    ckpt = tmp_path / "run" / "ckpt.pt"
    ck = torch.load(ckpt, weights_only=False)
    ck["config"].update({k: (list(v) if isinstance(v, tuple) else v) for k, v in VAEConfig.RETIRED.items()})
    torch.save(ck, ckpt)
    train_vae(notes, cfg, tmp_path / "run", classes, progress=False, max_steps=4)  # resumes
    ck = torch.load(ckpt, weights_only=False)
    assert not set(ck["config"]) & set(VAEConfig.RETIRED)  # rewritten without them
    ck["config"]["mix_groups"] = 1.0
    torch.save(ck, ckpt)
    with pytest.raises(RetiredOptionError, match="mix_groups"):
        train_vae(notes, cfg, tmp_path / "run", classes, progress=False)
