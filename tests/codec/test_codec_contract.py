"""The Codec contract for both codecs: shapes, frame rate, registry, save/load, offline EnCodec error."""

from __future__ import annotations

import pytest
import torch

from synth.codec import CodecError, load_codec
from synth.codec.bundled import BundledCodec, load_bundled
from tests.codec.conftest import tiny_config


@pytest.mark.parametrize("arch", ["harmonic", "seanet"])
def test_bundled_shapes(arch):
    torch.manual_seed(0)
    codec = BundledCodec(tiny_config(arch))
    assert codec.sample_rate == 24_000 and codec.frame_rate == 75.0 and codec.dim == 16
    wave = 0.1 * torch.randn(2, 24_000 + 100)  # not a whole number of frames: padded
    emb = codec.encode(wave)
    assert emb.shape == (2, codec.num_frames(24_100), 16) == (2, 76, 16)
    out = codec.decode(emb)
    assert out.shape == (2, 76 * 320) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ["harmonic", "seanet"])
def test_save_load_identical(tmp_path, arch):
    torch.manual_seed(1)
    codec = BundledCodec(tiny_config(arch))
    folder = codec.save(tmp_path / "codec")
    assert sorted(p.name for p in folder.iterdir()) == ["codec.pt", "config.json"]
    again = load_codec(folder)
    wave = 0.1 * torch.randn(1, 8000)
    emb = codec.encode(wave)
    assert torch.equal(emb, again.encode(wave))
    assert torch.equal(codec.decode(emb), again.decode(emb))  # deterministic, noise included


def test_load_errors(tmp_path):
    with pytest.raises(CodecError, match="config.json"):
        load_bundled(tmp_path)
    with pytest.raises(CodecError, match="unknown codec"):
        load_codec("no-such-codec")


def test_encodec_random_weights_shapes():
    codec = load_codec("encodec-24khz", pretrained=False)
    assert (codec.sample_rate, codec.frame_rate, codec.dim) == (24_000, 75.0, 128)
    emb = codec.encode(0.1 * torch.randn(1, 4800))
    assert emb.shape == (1, 15, 128)
    assert codec.decode(emb).shape == (1, 4800)


def test_encodec_offline_error_is_immediate(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.delenv("SYNTH_ENCODEC_CHECKPOINT", raising=False)
    import time

    t0 = time.monotonic()
    with pytest.raises(CodecError) as info:
        load_codec("encodec-24khz")
    assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert "encodec_24khz-d7cc33bc.th" in msg
    assert "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th" in msg
    assert str(tmp_path) in msg and "--encodec-checkpoint" in msg
    monkeypatch.setenv("SYNTH_ENCODEC_CHECKPOINT", str(tmp_path / "missing.th"))
    with pytest.raises(CodecError, match="SYNTH_ENCODEC_CHECKPOINT"):
        load_codec("encodec-24khz")


def test_encodec_loads_local_checkpoint(tmp_path):
    """A state_dict file given by path is used (here: random weights saved by us, to stand in for Meta's file)."""
    src = load_codec("encodec-24khz", pretrained=False)
    path = tmp_path / "encodec_24khz-d7cc33bc.th"
    torch.save(src.model.state_dict(), path)
    codec = load_codec("encodec-24khz", checkpoint=path)
    wave = 0.1 * torch.randn(1, 3200)
    assert torch.allclose(codec.encode(wave), src.encode(wave))
