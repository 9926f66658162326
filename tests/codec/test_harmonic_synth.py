"""The harmonic-plus-noise synthesizer: in tune when driven with a known f0, fast path equals the oscillator bank,
deterministic noise."""

from __future__ import annotations

import numpy as np
import torch

from synth.codec.bundled import CodecModel
from synth.codec.harmonic import FilteredNoise, harmonic_synth, harmonic_synth_bank, midi_to_hz
from tests.codec.conftest import tiny_config


def peak_hz(wave: torch.Tensor, sr: int = 24_000) -> float:
    spec = np.abs(np.fft.rfft(wave.numpy() * np.hanning(len(wave))))
    return float(np.argmax(spec) * sr / len(wave))


def test_wavetable_matches_oscillator_bank():
    torch.manual_seed(0)
    f0 = midi_to_hz(torch.tensor([[55.0], [67.0]]) + 0.2 * torch.sin(torch.arange(30) / 5.0))
    amps = torch.rand(2, 30, 20) / 20
    ref = harmonic_synth_bank(f0, amps, 320, 24_000)
    fast = harmonic_synth(f0, amps, 320, 24_000)
    assert fast.shape == ref.shape == (2, 30 * 320)
    assert (fast - ref).norm() / ref.norm() < 0.01


def test_forced_f0_gives_that_pitch():
    """Controls fed straight to the decoder's synthesizer: the spectral peak sits at the forced f0."""
    torch.manual_seed(0)
    model = CodecModel(tiny_config()).eval()
    dec = model.decoder
    frames = 75
    for midi in (48.0, 60.0, 69.0):
        harm = torch.full((1, frames, dec.n_harmonics), -30.0)  # logits
        harm[..., 0] = 0.0  # fundamental only
        ctrl = {"f0_midi": torch.full((1, frames), midi), "amp": torch.full((1, frames), 0.5), "harm": harm,
                "noise": torch.zeros(1, frames, dec.n_noise_bands)}
        wave = dec.synthesize(ctrl)[0]
        expected = float(midi_to_hz(torch.tensor(midi)))
        assert abs(peak_hz(wave) - expected) < 2.0
        assert abs(wave.abs().max().item() - 0.5) < 0.02


def test_harmonics_above_nyquist_are_silent():
    model = CodecModel(tiny_config()).eval()
    dec = model.decoder
    f0 = torch.full((1, 10), 3000.0)
    amps = dec.harmonic_amps(f0, torch.ones(1, 10), torch.ones(1, 10, dec.n_harmonics))
    assert torch.all(amps[..., 4:] == 0) and torch.all(amps[..., :3] > 0)  # 4 x 3 kHz = Nyquist


def test_noise_is_deterministic_and_shaped():
    noise = FilteredNoise(320, 8, seed=0)
    mags = torch.zeros(1, 40, 8)
    mags[..., -1] = 1.0  # only the top band
    a, b = noise(mags), FilteredNoise(320, 8, seed=0)(mags)
    assert torch.equal(a, b)
    spec = np.abs(np.fft.rfft(a[0].numpy()))
    half = len(spec) // 2
    assert spec[half:].sum() > 5 * spec[: half // 2].sum()


def test_yin_pitch_feature_on_tones():
    from synth.dsp.pitch import feature_midi, pitch_feature
    from tests.codec.conftest import tone

    waves = torch.from_numpy(np.stack([tone(p, 1.0, 1.0) for p in (48, 60, 72)]))
    feat = pitch_feature(waves, 24_000, 320)
    assert feat.shape == (3, 75, 2)
    midi = feature_midi(feat)[:, 10:50].median(1).values
    assert torch.allclose(midi, torch.tensor([48.0, 60.0, 72.0]), atol=0.1)
    assert (feat[:, 10:50, 1] > 0.9).all()  # periodic


def test_f0_head_decodes_bins():
    model = CodecModel(tiny_config()).eval()
    dec = model.decoder
    target = torch.tensor([[50.3, 61.0, 70.55]])
    logits = torch.log(dec.f0_targets(target) + 1e-9)
    assert torch.allclose(dec.decode_f0(logits), target, atol=0.02)


def test_pitch_feature_codec_dims():
    from synth.codec.bundled import BundledCodec, CodecConfig

    cfg = CodecConfig(**{**tiny_config().__dict__, "pitch_feature": True})
    codec = BundledCodec(cfg)
    emb = codec.encode(0.1 * torch.randn(1, 6400))
    assert emb.shape == (1, 20, 16)


def test_chunked_synthesis_gives_the_same_samples():
    """Issue 18: on CPU without gradients ``synthesize`` makes the rows ``SYNTH_CHUNK`` at a time (fast for 88 notes);
    the samples equal one batch's (made with gradients on, the path training takes), whatever the batch size, the v6
    options (loudness-relative noise, fine envelope) included."""
    from synth.codec import harmonic

    torch.manual_seed(0)
    cfg = tiny_config()
    for extra in ({}, {"loudness_dim": 0, "fine_env": 4}):
        dec = harmonic.HarmonicDecoder(cfg.dim, cfg.hop_length, cfg.sample_rate, hidden=16, n_blocks=2,
                                       n_harmonics=20, n_noise_bands=8, **extra).eval()
        for batch in (1, harmonic.SYNTH_CHUNK, 2 * harmonic.SYNTH_CHUNK + 1):
            emb = torch.randn(batch, 12, cfg.dim)
            with torch.no_grad():
                ctrl = dec.controls(emb)
            whole = dec.synthesize(ctrl).detach()  # grad mode: one batch
            with torch.inference_mode():
                chunked = dec.synthesize(ctrl)
            assert chunked.shape == whole.shape == (batch, 12 * cfg.hop_length)
            # (grad mode reads the tables by gathers, inference by grid_sample: equal to float rounding)
            assert float((chunked - whole).abs().max()) <= 2e-6 * max(1.0, float(whole.abs().max()))


def test_decode_from_a_frame_gives_the_same_samples_as_the_whole_note():
    """Issue 19: the live-morph preview synthesizes only from a frame on; the network reads every frame (the phase
    is integrated from the note's start), so those samples are the whole decode's (to float rounding: the table
    reads' grid is normalized by the frame count), harmonics, noise (its inverse STFT from the frame before) and
    fine envelope included, in one batch or in chunks."""
    from synth.codec import harmonic

    torch.manual_seed(1)
    cfg = tiny_config()
    for extra in ({}, {"loudness_dim": 0, "fine_env": 4}):
        dec = harmonic.HarmonicDecoder(cfg.dim, cfg.hop_length, cfg.sample_rate, hidden=16, n_blocks=2,
                                       n_harmonics=20, n_noise_bands=8, **extra).eval()
        for batch in (2, 2 * harmonic.SYNTH_CHUNK + 1):
            emb = torch.randn(batch, 12, cfg.dim)
            with torch.inference_mode():
                whole = dec(emb)[0]
                for start in (1, 2, 7, 11):
                    part = dec.decode_from(emb, start)
                    assert part.shape == (batch, (12 - start) * cfg.hop_length)
                    err = float((part - whole[:, start * cfg.hop_length:]).abs().max())
                    assert err <= 2e-6 * max(1.0, float(whole.abs().max()))  # float rounding (the frame count)
                assert torch.equal(dec.decode_from(emb, 0), whole)


def test_playing_reads_the_tables_as_training_does():
    """Without gradients (playing) the wavetables are read by one bilinear ``grid_sample``; with them (training) by
    gathers: the same samples to float rounding, from frame 0 or a later one, for one frame or many."""
    torch.manual_seed(2)
    for batch, frames, start in ((2, 30, 0), (3, 17, 5), (1, 1, 0), (2, 40, 39)):
        f0 = midi_to_hz(torch.randint(30, 100, (batch, 1)).float() + 0.3 * torch.sin(torch.arange(frames) / 3.0))
        amps = torch.rand(batch, frames - start, 40) / 40
        train = harmonic_synth(f0, amps, 320, 24_000, start=start)  # grad mode on: the gathers
        with torch.inference_mode():
            play = harmonic_synth(f0, amps, 320, 24_000, start=start)
        assert play.shape == train.shape == (batch, (frames - start) * 320)
        assert float((play - train).abs().max()) <= 1e-6
