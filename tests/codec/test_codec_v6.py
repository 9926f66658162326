"""Codec v6's decoder paths: an amplitude driven by the loudness channel whose zero is zero, a noise branch that
carries energy from the start, sub-frame envelopes that sharpen onsets without changing a frame's level, and a pitch
dim over the whole keyboard."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from synth.codec.bundled import CodecConfig, CodecModel
from synth.codec.harmonic import fine_envelope
from synth.codec.loudness import FLOOR_DB, amplitude, feature_db, frame_level_db, loudness_feature
from synth.dsp.pitch import feature_midi
from tests.codec.conftest import SR, tone, tiny_config


def v6_config(**kw):
    return dataclasses.replace(tiny_config(), pitch_feature=True, pitch_feature_dims=1, emb_norm=True,
                               loudness_feature=True, fine_env=8, noise_init_db=-25.0, yin_win=2048, yin_fmin=25.0,
                               yin_fmax=4500.0, **kw)


def _model(seed: int = 0) -> CodecModel:
    torch.manual_seed(seed)
    return CodecModel(v6_config()).eval()


def test_layout_learned_then_loudness_then_pitch():
    cfg = v6_config()
    assert (cfg.learned_dims, cfg.loudness_dim, cfg.pitch_dim) == (14, 14, 15)
    old = tiny_config()  # v1-v5 folders: no loudness dim, pitch last
    assert old.loudness_dim is None and old.learned_dims == 16


def test_frame_level_tracks_rms_and_floors_silence():
    t = torch.arange(SR) / SR
    wave = torch.stack([0.5 * torch.sin(2 * np.pi * 440 * t), torch.zeros(SR)])
    db = frame_level_db(wave, 320)
    assert db.shape == (2, SR // 320)
    assert abs(float(db[0, 10:-10].mean()) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.3
    assert bool((db[1] == FLOOR_DB).all())
    assert torch.allclose(feature_db(loudness_feature(wave, 320)[..., 0]), db)


def test_amplitude_is_exactly_zero_at_the_floor_and_follows_level_above_the_gate():
    db = torch.tensor([-140.0, FLOOR_DB, FLOOR_DB + 5, -60.0, -6.0, 40.0])
    amp = amplitude((db + 50) / 50)
    assert amp[0] == 0 and amp[1] == 0 and 0 < amp[2] < 10 ** ((FLOOR_DB + 5) / 20)
    assert torch.allclose(amp[3:5], 10 ** (db[3:5] / 20))
    assert amp[5] <= 10 ** (12 / 20) + 1e-6  # capped: a wild generator cannot blast


@torch.no_grad()
def test_written_silence_decodes_to_digital_zero_whatever_the_learned_dims():
    model = _model()
    cfg = model.config
    emb = torch.randn(3, 75, cfg.dim) * 3  # wild learned dims
    emb[..., cfg.pitch_dim] = 0.0
    emb[..., cfg.loudness_dim] = -1.0  # FLOOR_DB
    emb[1, :, cfg.loudness_dim] = -1.5  # below the floor
    wave, _ = model.decode(emb)
    assert bool((wave == 0).all())
    # a release: level falling to the floor in the second half gives exact zeros there
    emb[2, :, cfg.loudness_dim] = torch.linspace(0.4, -1.2, 75)
    wave, _ = model.decode(emb)
    floor_frame = int(torch.nonzero(emb[2, :, cfg.loudness_dim] <= -1.0)[0])
    assert wave[2, : 20 * 320].abs().max() > 1e-3
    assert bool((wave[2, (floor_frame + 1) * 320:] == 0).all())


@torch.no_grad()
def test_round_trip_of_a_note_with_a_silent_tail_ends_in_silence_and_at_its_level():
    model = _model()
    wave = torch.from_numpy(tone(60, 1.0, 1.0))[None]
    wave[:, int(0.8 * SR):] = 0.0  # the real note falls silent
    recon, _ = model.decode(model.encode(wave))
    assert bool((recon[:, int(0.85 * SR):] == 0).all())
    held = slice(int(0.1 * SR), int(0.7 * SR))
    ratio_db = 20 * np.log10(float(recon[0, held].square().mean().sqrt() / wave[0, held].square().mean().sqrt()))
    assert abs(ratio_db) < 13  # untrained: the level comes from the channel, within the correction's bound


@torch.no_grad()
def test_noise_branch_carries_energy_at_initialization():
    """v1-v5 initialized the noise ~65 dB under the amplitude (2e-5 of the output energy after training): v6 starts
    it at noise_init_db, so it gets gradient."""
    model = _model()
    wave = torch.from_numpy(tone(60, 1.0, 1.0))[None]
    ctrl = model.decoder.controls(model.encode(wave))
    noise = model.decoder.noise(ctrl["noise"])
    full = model.decoder.synthesize(ctrl)
    share = float(noise.square().sum() / full.square().sum())
    assert 1e-3 < share < 0.1, share  # about -25 dB


def test_harm_prior_offsets_the_harmonic_logits_by_p_ln_k():
    """CodecConfig.harm_prior: the same weights give harmonic logits (2 - p) ln k higher under a 1/k^p prior than
    under v1-v6.3's 1/k^2; a folder without the field keeps 2."""
    torch.manual_seed(0)
    old = CodecModel(v6_config()).eval()
    flat = CodecModel(v6_config(harm_prior=1.0)).eval()
    flat.load_state_dict(old.state_dict())
    emb = torch.randn(2, 6, old.config.dim)
    with torch.no_grad():
        a, b = old.decoder.controls(emb)["harm"], flat.decoder.controls(emb)["harm"]
    k = torch.arange(1, a.shape[-1] + 1, dtype=torch.float32)
    assert torch.allclose(b - a, torch.log(k).expand_as(a), atol=1e-5)
    saved = dataclasses.asdict(v6_config())
    del saved["harm_prior"]  # a folder written before the field existed
    assert CodecConfig.from_dict(saved).harm_prior == 2.0


def test_fine_envelope_is_linear_between_points_and_keeps_frame_power():
    pts = torch.tensor([[[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 0.0, 2.0]]])
    env = fine_envelope(pts, 320)
    assert env.shape == (1, 640)
    assert torch.allclose(env[0, :240], torch.ones(240))
    assert torch.allclose(env[0, 320 + 40], torch.tensor(1.0))  # halfway between 0 and 2
    model = _model()
    emb = torch.randn(1, 20, model.config.dim)
    ctrl = model.decoder.controls(emb)
    assert torch.allclose(ctrl["fine_env"].square().mean(-1), torch.ones(1, 20), atol=1e-4)


@torch.no_grad()
def test_pitch_dim_covers_the_whole_keyboard():
    model = _model()
    t = np.arange(SR) / SR
    for midi in (21, 33, 96, 105):
        f0 = 440 * 2 ** ((midi - 69) / 12)
        x = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6) if k * f0 < SR / 2)
        emb = model.encode(torch.tensor(x, dtype=torch.float32)[None])
        got = float(feature_midi(emb[0, 10:-10, model.config.pitch_dim:]).median())
        assert abs(got - midi) < 0.3, (midi, got)


def test_v6_trains_and_resumes(tiny_notes, tmp_path):
    from synth.codec.train import TrainConfig, train

    cfg = TrainConfig(data=str(tiny_notes), steps=10, batch_size=4, crop_seconds=0.5, note_seconds=1.0, lr=3e-3,
                      warmup_steps=1, teacher_f0_steps=4, ckpt_minutes=100, log_every=1, threads=1,
                      audio_cache=str(tmp_path / "audio"), valid_notes=2, stft_ffts=(512, 128, 64), w_lin_mag=1.0,
                      w_smooth=0.5, emb_noise=0.1)
    summary = train(cfg, v6_config(), tmp_path / "run", progress=False)
    assert summary["steps"] == 10 and np.isfinite(summary["final_running_losses"]["stft"])
    more = train(dataclasses.replace(cfg, steps=12), v6_config(), tmp_path / "run", progress=False)
    assert more["steps"] == 12


def test_onset_fill_raises_only_a_notes_first_frame_to_the_next_frames_level():
    from synth.codec.harmonic import fill_onsets

    amp = torch.tensor([[0.0, 0.0, 0.3, 1.0, 0.9, 0.5, 0.0, 0.3, 0.8],   # two notes, the second after a silence
                        [0.5, 0.6, 0.7, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4],   # one that starts at the first frame
                        [0.0, 0.05, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])  # frame 1's window only grazes the onset
    out = fill_onsets(amp)
    assert out[0].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0, 0.9, 0.5, 0.0, 0.8, 0.8])
    assert out[1].tolist() == pytest.approx([0.6, 0.6, 0.7, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert out[2].tolist() == pytest.approx(amp[2].tolist())  # no frame raised before the note starts
    assert bool((out >= amp).all())
    slow = torch.tensor([[0.0, 0.005, 0.01, 0.02, 0.04, 0.08]])  # a slow swell: only its very first frame changes
    assert fill_onsets(slow)[0, 2:].tolist() == pytest.approx(slow[0, 2:].tolist())


@torch.no_grad()
def test_onset_fill_sharpens_the_attack_of_a_struck_note_and_nothing_else():
    """Off by default (older folders decode as they always did); on, the first frame of a note that starts at full
    level decodes near the level of the frames after it instead of ramping up from a level read half in silence."""
    torch.manual_seed(0)
    plain = CodecModel(v6_config()).eval()
    filled = CodecModel(v6_config(onset_fill=True)).eval()
    filled.load_state_dict(plain.state_dict())
    assert v6_config().onset_fill is False
    wave = torch.from_numpy(tone(60, 1.0, 1.0))[None]  # full level from the first sample
    emb = plain.encode(wave)
    a, _ = plain.decode(emb)
    b, _ = filled.decode(emb)

    def frame_db(x, k):
        return 20 * np.log10(float(x[0, k * 320:(k + 1) * 320].square().mean().sqrt()) + 1e-12)

    assert frame_db(b, 0) - frame_db(a, 0) > 2.0
    assert abs(frame_db(b, 0) - frame_db(b, 2)) < abs(frame_db(a, 0) - frame_db(a, 2))
    assert torch.equal(a[:, 2 * 320:], b[:, 2 * 320:])  # from the frame after the first on, the same samples
