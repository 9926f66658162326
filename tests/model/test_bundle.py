"""Bundle: a tiny bundle loads and verifies; each kind of damage gives a BundleError naming the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from synth.engine.synthesizer import Synthesizer
from synth.model.bundle import BundleError, build_tiny_bundle, load_bundle
from synth.model.instrument import Instrument


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return build_tiny_bundle(tmp_path_factory.mktemp("b") / "tiny", seed=0)


def copy(src, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_loads_and_has_contract_fields(tiny_bundle):
    b = load_bundle(tiny_bundle, device="cpu")
    assert b.pitch_range == (48, 72) and b.sample_rate == 24000 and b.num_frames > 0
    assert len(b.hash) == 12 and b.instruments and isinstance(b.instruments[0], Instrument)
    assert b.stats["mean"].shape == (b.codec.dim,)


def test_hash_is_stable(tiny_bundle, tmp_path):
    other = build_tiny_bundle(tmp_path / "again", seed=0)
    assert load_bundle(other).hash == load_bundle(tiny_bundle).hash


def test_missing_file(tiny_bundle, tmp_path):
    d = copy(tiny_bundle, tmp_path)
    (d / "generator.pt").unlink()
    with pytest.raises(BundleError, match=r"generator\.pt: missing"):
        load_bundle(d)


def test_truncated_file(tiny_bundle, tmp_path):
    d = copy(tiny_bundle, tmp_path)
    data = (d / "vae.pt").read_bytes()
    (d / "vae.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"vae\.pt: truncated"):
        load_bundle(d)


def test_hash_mismatch(tiny_bundle, tmp_path):
    d = copy(tiny_bundle, tmp_path)
    data = bytearray((d / "codec" / "codec.pt").read_bytes())
    data[-10] ^= 0xFF
    (d / "codec" / "codec.pt").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"codec\.pt: sha256 mismatch"):
        load_bundle(d)


def test_corrupt_json(tiny_bundle, tmp_path):
    d = copy(tiny_bundle, tmp_path)
    (d / "bundle.json").write_text("{ not json")
    with pytest.raises(BundleError, match=r"bundle\.json: not valid JSON"):
        load_bundle(d)


def test_version_mismatch_and_missing_folder(tiny_bundle, tmp_path):
    d = copy(tiny_bundle, tmp_path)
    info = json.loads((d / "bundle.json").read_text())
    info["format_version"] = 99
    (d / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match="version 99"):
        load_bundle(d)
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nowhere")


def test_synthesizer_on_tiny_bundle(tiny_bundle):
    from synth.engine.synthesizer import Synthesizer

    s = Synthesizer(load_bundle(tiny_bundle), device="cpu")
    a = s.generate((0.1, -0.2), [48, 60, 72, 30])  # 30: clamped into the range
    assert a.dtype == np.float32 and a.shape[0] == 4 and a.shape[1] == s.num_samples
    assert np.isfinite(a).all() and np.abs(a).max() <= 1.0
    v = s.generate_vae((0.0, 0.0), [60])
    assert v.shape == (1, s.num_samples) and np.isfinite(v).all()
    assert s.generate((0, 0), []).shape == (0, s.num_samples)
    near = s.nearest_instruments((0.0, 0.0), k=3)
    assert len(near) == 3 and near[0][1] <= near[-1][1] and near[0][0] in s.bundle.instruments


def test_pitch_lock_keeps_the_pitch_channel_near_the_asked_pitch(tmp_path):
    import torch

    from synth.dsp.pitch import MIDI_CENTER, MIDI_SCALE
    from synth.engine.synthesizer import Synthesizer

    s = Synthesizer(load_bundle(build_tiny_bundle(tmp_path / "p", pitch_feature=True)), device="cpu")
    d = s.pitch_dim
    assert d == 7  # the last of 8 dims is the YIN pitch channel
    pitch = torch.tensor([60, 67])
    raw_semitones = torch.tensor([[62.0, 60.1, 59.0], [67.0, 66.0, 67.25]])  # asked 60 and 67
    frames = torch.randn(2, 3, 8)
    frames[..., d] = ((raw_semitones - MIDI_CENTER) / MIDI_SCALE - s.mean[d]) / s.std[d]
    def played(out):
        return (out[..., d] * s.std[d] + s.mean[d]) * MIDI_SCALE + MIDI_CENTER

    assert s.pitch_lock == 0.0  # default: the channel is written from the asked pitch
    exact = s.lock_pitch(frames, pitch)
    assert torch.allclose(played(exact), torch.tensor([[60.0] * 3, [67.0] * 3]), atol=1e-4)
    s.pitch_lock = 0.3  # a band: values inside it pass, the others are clamped to its edges
    out = s.lock_pitch(frames, pitch)
    expected = torch.tensor([[60.3, 60.1, 59.7], [67.0, 66.7, 67.25]])
    assert torch.allclose(played(out), expected, atol=1e-4)
    assert torch.equal(out[..., :d], frames[..., :d])  # timbre dims untouched
    s.pitch_lock = 0.0
    a = s.generate((0.0, 0.0), [60, 72])
    assert a.shape == (2, s.num_samples) and np.isfinite(a).all()


def test_pitch_lock_leaves_codecs_without_a_pitch_channel_alone(tiny_bundle):
    import torch

    from synth.engine.synthesizer import Synthesizer

    s = Synthesizer(load_bundle(tiny_bundle), device="cpu")
    frames = torch.randn(2, 3, 8)
    assert s.pitch_dim is None and torch.equal(s.lock_pitch(frames, torch.tensor([60, 61])), frames)


def test_synthesizer_silences_nonfinite(tiny_bundle):
    from synth.engine.synthesizer import Synthesizer

    w = np.array([[0.5, np.nan, 0.1], [2.0, -4.0, 1.0]], np.float32)
    import torch

    out = Synthesizer.safe_audio(torch.from_numpy(w))
    assert (out[0] == 0).all() and np.abs(out[1]).max() == pytest.approx(0.98)


def test_play_path_from_bundle_json_picks_the_network(tiny_bundle, tmp_path):
    """bundle.json's play_path decides what the instrument plays; the generator stays reachable explicitly."""
    import json
    import shutil

    from synth.engine.synthesizer import Synthesizer

    folder = tmp_path / "vae_path"
    shutil.copytree(tiny_bundle, folder)
    info = json.loads((folder / "bundle.json").read_text())
    info["play_path"] = "vae"
    (folder / "bundle.json").write_text(json.dumps(info))
    s = Synthesizer(load_bundle(folder), device="cpu")
    assert s.play_path == "vae"
    np.testing.assert_array_equal(s.generate((0.2, 0.1), [60, 61]), s.generate_vae((0.2, 0.1), [60, 61]))
    np.testing.assert_array_equal(Synthesizer(load_bundle(tiny_bundle), device="cpu").generate((0.2, 0.1), [60]),
                                  s.generate_generator((0.2, 0.1), [60]))
    info["play_path"] = "wavetable"
    (folder / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(BundleError, match="play_path"):  # refused at load now (issue 16), naming the field
        Synthesizer(load_bundle(folder), device="cpu")


def test_half_weights_store_the_stage2_networks_as_float16_and_play_like_float32(tmp_path):
    full = build_tiny_bundle(tmp_path / "full", flow=True)
    half = build_tiny_bundle(tmp_path / "half", flow=True, half_weights=True)
    for name in ("generator.pt", "flow.pt"):
        state = torch.load(half / name, weights_only=True)
        assert all(t.dtype == torch.float16 for t in state.values() if t.is_floating_point())
        assert (half / name).stat().st_size < 0.7 * (full / name).stat().st_size
    info = json.loads((half / "bundle.json").read_text())
    assert info["weights_dtype"] == {"generator.pt": "float16", "flow.pt": "float16"}
    a = Synthesizer(load_bundle(full), device="cpu").generate((0.2, -0.1), [60, 64])
    b = Synthesizer(load_bundle(half), device="cpu").generate((0.2, -0.1), [60, 64])
    assert b.dtype == np.float32 and np.abs(a).max() > 0
    assert np.abs(a - b).max() <= 0.02 * np.abs(a).max()  # float16 rounding of the weights only


def test_half_weights_refuse_a_tensor_beyond_float16(tmp_path):
    from synth.model.bundle import _stored

    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight[0, 0] = 1e5
    with pytest.raises(BundleError, match="'weight' reaches 100000.*float16"):
        _stored(net, True, "generator.pt")
    assert _stored(net, False, "generator.pt")["weight"].dtype == torch.float32
