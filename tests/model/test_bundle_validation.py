"""A bundle is validated completely at load (issue 16, items 4 and 7): every way bundle.json or the weights can be
wrong gives a ``BundleError`` that names the file and the field, before anything reads outside the folder or a note
is played. Each test damages a copy of a tiny bundle in one way (weights edited with their hashes recomputed, so
the damage reaches the check behind the hash check)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

from synth.model.bundle import BundleError, _content_hash, build_tiny_bundle, load_bundle, sha256_file

_opened: list[str] | None = None  # paths opened while a test watches (an audit hook cannot be removed)


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _opened.append(str(Path(args[0] if not isinstance(args[0], bytes) else args[0].decode()).resolve()))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("valid") / "tiny", seed=0)


@pytest.fixture
def bundle(tiny, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(tiny, dst)
    return dst


def edit_json(folder: Path, change) -> None:
    path = folder / "bundle.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def edit_weights(folder: Path, name: str, change) -> None:
    """Change a weight file and record its new hash, size and the bundle hash: only the content is wrong."""
    state = torch.load(folder / name, weights_only=True)
    change(state)
    torch.save(state, folder / name)

    def rehash(info):
        info["files"][name] = {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        info["hash"] = _content_hash(info["files"])

    edit_json(folder, rehash)


def refused(folder: Path, *words: str) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(folder, device="cpu")
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# ------------------------------------------------------------------------------------------------ item 4


@pytest.mark.parametrize("value", ["../../../x", "dc691ac40589/..", "", "DC691AC40589", "abc", "z" * 12, 12345,
                                   None, "dc691ac40589" * 2])
def test_hash_must_be_twelve_lowercase_hex_digits(bundle, value):
    edit_json(bundle, lambda info: info.__setitem__("hash", value))
    refused(bundle, "bundle.json", "'hash'")


def test_hash_must_be_the_hash_of_the_listed_files(bundle):
    edit_json(bundle, lambda info: info.__setitem__("hash", "0123456789ab"))
    refused(bundle, "bundle.json", "'hash'", "0123456789ab")


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_listed_files_must_stay_inside_the_folder_and_are_not_read_when_outside(bundle, tmp_path, kind):
    global _opened
    outside = tmp_path / "outside.pt"
    shutil.copy(bundle / "vae.pt", outside)
    name = {"parent": "../outside.pt", "absolute": str(outside), "symlink": "link.pt"}[kind]
    if kind == "symlink":
        (bundle / "link.pt").symlink_to(outside)

    def point_vae_outside(info):
        info["files"][name] = info["files"].pop("vae.pt")
        info["hash"] = _content_hash(info["files"])

    edit_json(bundle, point_vae_outside)
    _opened = []
    try:
        refused(bundle, "bundle.json", "outside the bundle folder")
        assert str(outside.resolve()) not in _opened
    finally:
        _opened = None


@pytest.mark.parametrize("folder", ["../elsewhere", "/tmp", "codec/../..", "", 7])
def test_codec_folder_must_be_inside(bundle, folder):
    edit_json(bundle, lambda info: info["codec"].__setitem__("folder", folder))
    refused(bundle, "bundle.json", "'codec.folder'")


def test_empty_file_list_is_refused(bundle):
    edit_json(bundle, lambda info: info.update(files={}, hash=_content_hash({})))
    refused(bundle, "bundle.json", "'files'")


@pytest.mark.parametrize("name", ["vae.pt", "generator.pt", "stats.pt", "codec/codec.pt", "codec/config.json"])
def test_every_weight_must_be_listed(bundle, name):
    def drop(info):
        del info["files"][name]
        info["hash"] = _content_hash(info["files"])

    edit_json(bundle, drop)
    refused(bundle, "bundle.json", name, "not listed")


@pytest.mark.parametrize("record", [{"sha256": "xyz"}, {"sha256": "0" * 63}, {}, "abc", {"sha256": "0" * 64,
                                                                                      "bytes": -1}])
def test_file_records_must_be_well_formed(bundle, record):
    def damage(info):
        info["files"]["vae.pt"] = record
        info["hash"] = "0" * 12

    edit_json(bundle, damage)
    refused(bundle, "bundle.json", "vae.pt")


# ------------------------------------------------------------------------------------------------ item 7


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(bundle, bad):
    def poison(state):
        key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
        state[key].view(-1)[1] = bad

    edit_weights(bundle, "generator.pt", poison)
    refused(bundle, "generator.pt", "not finite")


@pytest.mark.parametrize("std", [0.0, -0.5, math.nan])
def test_stats_std_must_be_finite_and_positive(bundle, std):
    edit_weights(bundle, "stats.pt", lambda state: state["std"].__setitem__(2, std))
    refused(bundle, "stats.pt", "'std'")


def test_stats_without_std_are_refused_naming_the_field(bundle):
    edit_weights(bundle, "stats.pt", lambda state: state.pop("std"))
    refused(bundle, "stats.pt", "'std'", "missing")


@pytest.mark.parametrize("value", [10**9, 0, -5, 2.5, "300", None])
def test_absurd_num_frames_is_refused(bundle, value):
    edit_json(bundle, lambda info: info.__setitem__("num_frames", value))
    refused(bundle, "bundle.json", "'num_frames'")


def test_a_non_finite_number_anywhere_in_bundle_json_is_refused(bundle):
    edit_json(bundle, lambda info: info.__setitem__("num_frames", math.nan))  # json.dumps writes NaN
    refused(bundle, "bundle.json", "NaN")


def test_num_frames_must_match_the_generator(bundle):
    edit_json(bundle, lambda info: info.__setitem__("num_frames", info["num_frames"] * 2))
    refused(bundle, "bundle.json", "'num_frames'", "_config.num_frames")


@pytest.mark.parametrize("field,value", [("sample_rate", 0), ("sample_rate", 10**12), ("pitch_range", [72, 48]),
                                         ("pitch_range", [0, 200]), ("pitch_range", "48-72"),
                                         ("play_path", "nowhere")])
def test_other_fields_are_checked(bundle, field, value):
    edit_json(bundle, lambda info: info.__setitem__(field, value))
    refused(bundle, "bundle.json", f"'{field}'")


@pytest.mark.parametrize("field", ["family", "x", "name"])
def test_instruments_need_every_field(bundle, field):
    edit_json(bundle, lambda info: info["instruments"][2].pop(field))
    refused(bundle, "bundle.json", "instruments[2]", f"'{field}'")


def test_config_that_does_not_fit_the_weights_is_refused_without_building_it(bundle):
    edit_json(bundle, lambda info: info["generator_config"].update(d_model=1 << 20, n_layers=1 << 12))
    refused(bundle, "generator", "generator_config")


@pytest.mark.parametrize("model", ["generator_config", "vae_config"])
def test_one_huge_layer_is_refused_before_it_is_filled(bundle, model):
    """A config asking for one 17 GB layer (d_model or hidden 65536: few tensors, so the tensor budget lets it
    through) is refused as soon as the shell creates that tensor, before any weight is initialised or computed on."""
    def huge(info):
        cfg = info[model]
        key = next(k for k in ("d_model", "hidden") if k in cfg)
        cfg[key] = 1 << 16

    edit_json(bundle, huge)
    refused(bundle, model.removesuffix("_config"), model)


def test_a_bundle_that_renders_silence_is_refused_by_the_probe_note(bundle):
    def silence(state):
        for key, value in state.items():
            if key.startswith("decoder.") and value.is_floating_point():
                value.fill_(-1e3 if key.endswith("bias") else 0.0)

    edit_weights(bundle, "codec/codec.pt", silence)
    refused(bundle, "bundle.json", "probe note", "silent")


def test_a_bundle_that_renders_non_finite_audio_is_refused_by_the_probe_note(bundle):
    def blow_up(state):
        for value in state.values():
            if value.is_floating_point():
                value.mul_(1e20)

    edit_weights(bundle, "generator.pt", blow_up)
    refused(bundle, "probe note", "not finite")


def test_the_gui_falls_back_to_the_demo_naming_file_and_field(bundle):
    from synth.gui.engine_adapter import OpenOptions, open_engine

    edit_json(bundle, lambda info: info["instruments"][0].pop("family"))
    adapter = open_engine(OpenOptions(bundle=bundle, audio=False, use_grid=False))
    try:
        assert adapter.model is None
        assert "bundle.json" in adapter.fallback_reason and "'family'" in adapter.fallback_reason
    finally:
        adapter.close()


def test_the_shipped_and_tiny_bundles_pass(tiny):
    assert load_bundle(tiny, device="cpu").hash
    assert load_bundle("models/default", device="cpu").hash == json.loads(
        Path("models/default/bundle.json").read_text())["hash"]
