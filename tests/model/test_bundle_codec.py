"""synth bundle codec: a decoder with the same encoder replaces the bundle's codec (hashes rewritten, probe passes);
a codec with another encoder is refused and the bundle is left byte for byte as it was."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from synth.codec.bundled import load_bundled, save_codec
from synth.model.bundle import BundleError, build_tiny_bundle, load_bundle
from synth.model.bundle_codec import replace_codec


def tree_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def bundle(tmp_path):
    out = tmp_path / "bundle"
    build_tiny_bundle(out, seed=3)
    return out


def retrained(bundle, tmp_path, part: str, name: str):
    codec = load_bundled(bundle / "codec")
    with torch.no_grad():
        for key, value in codec.model.state_dict().items():
            if key.startswith(part) and value.is_floating_point():
                value.add_(0.01 * torch.randn_like(value))
    codec.model.config.name = name
    return save_codec(codec.model, tmp_path / name)


def test_a_fine_tuned_decoder_replaces_the_codec(bundle, tmp_path):
    new = retrained(bundle, tmp_path, "decoder.", "tiny-tuned")
    (bundle / "codec" / "examples").mkdir()
    (bundle / "codec" / "examples" / "a.png").write_bytes(b"kept")  # the card's pictures stay
    before = load_bundle(bundle, device="cpu")
    result = replace_codec(bundle, new)
    after = load_bundle(bundle, device="cpu")
    assert result["old_hash"] == before.hash != after.hash == result["hash"]
    assert after.info["codec"]["name"] == "tiny-tuned"
    assert (bundle / "codec" / "codec.pt").read_bytes() == (new / "codec.pt").read_bytes()
    wave = torch.randn(1, 24_000) * 0.1
    with torch.no_grad():
        assert torch.equal(before.codec.encode(wave), after.codec.encode(wave))
    assert not any(p.name.startswith(".") for p in bundle.iterdir())
    assert (bundle / "codec" / "examples" / "a.png").read_bytes() == b"kept"


def test_onset_fill_is_set_on_the_swapped_codec_and_rehashed(bundle, tmp_path):
    new = retrained(bundle, tmp_path, "decoder.", "tiny-tuned")
    assert load_bundled(new).config.onset_fill is False
    result = replace_codec(bundle, new, onset_fill=True)
    after = load_bundle(bundle, device="cpu")
    assert after.codec.config.onset_fill is True and after.hash == result["hash"]
    assert json.loads((new / "config.json").read_text()).get("onset_fill", False) is False  # the source is untouched
    again = replace_codec(bundle, new)  # None keeps the folder's setting: off
    assert load_bundle(bundle, device="cpu").codec.config.onset_fill is False and again["hash"] != result["hash"]


def test_another_encoder_is_refused_and_nothing_changes(bundle, tmp_path):
    new = retrained(bundle, tmp_path, "encoder.", "tiny-other")
    before = tree_bytes(bundle)
    with pytest.raises(BundleError, match=r"not a decoder for .*encoder tensors differ"):
        replace_codec(bundle, new)
    assert tree_bytes(bundle) == before


def test_a_codec_that_fails_the_probe_is_rolled_back(bundle, tmp_path):
    new = tmp_path / "silent"
    shutil.copytree(bundle / "codec", new)
    codec = load_bundled(new)
    with torch.no_grad():
        for key, value in codec.model.state_dict().items():
            if key.startswith("decoder.") and value.is_floating_point():
                value.fill_(float("nan"))
    save_codec(codec.model, new)
    before = tree_bytes(bundle)
    with pytest.raises(BundleError):
        replace_codec(bundle, new)
    assert tree_bytes(bundle) == before
    json.loads((bundle / "bundle.json").read_text())
