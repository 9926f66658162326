"""A few training steps on a tiny config: the loss falls, a run resumes from its checkpoint, the cache builds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from synth.codec import load_codec
from synth.codec.cache import EmbeddingCache, build_cache
from synth.codec.train import TrainConfig, train
from tests.codec.conftest import tiny_config


def test_train_resume_export_and_cache(tiny_notes, tmp_path):
    cfg = TrainConfig(data=str(tiny_notes), steps=12, batch_size=4, crop_seconds=0.5, note_seconds=1.0, lr=3e-3,
                      warmup_steps=1, teacher_f0_steps=4, ckpt_minutes=100, log_every=1, threads=1,
                      audio_cache=str(tmp_path / "audio"), valid_notes=2)
    out = tmp_path / "run"
    first = train(cfg, tiny_config("harmonic"), out, progress=False)
    assert first["steps"] == 12 and (out / "checkpoint.pt").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    stft = [r["stft"] for r in log if "stft" in r]  # running averages of the spectral loss
    assert stft[-1] < stft[0]
    # resume: the step count continues from the checkpoint
    more = train(TrainConfig(**{**cfg.__dict__, "steps": 15}), tiny_config("harmonic"), out, progress=False,
                 export=tmp_path / "export")
    assert more["steps"] == 15
    codec = load_codec(tmp_path / "export")
    assert codec.dim == 16
    # the embedding cache over the tiny dataset
    emb_dir = tmp_path / "emb"
    summary = build_cache(codec, tiny_notes, emb_dir, seconds=1.0, batch_size=3, progress=False)
    assert summary["splits"]["train"]["shape"] == [10, 75, 16]
    cache = EmbeddingCache(emb_dir, "test")
    assert cache.embeddings.dtype == np.float16 and cache.embeddings.shape == (5, 75, 16)
    assert cache.meta[0]["pitch"] == 48 and cache.meta[0]["family"] == "synth_lead"
    x = cache.standardized(slice(0, 2))
    assert x.dtype == np.float32
    assert np.allclose(cache.destandardize(x), cache.embeddings[:2].astype(np.float32), atol=1e-3)
    train_cache = EmbeddingCache(emb_dir, "train")
    flat = train_cache.standardized(slice(None)).reshape(-1, 16)
    assert np.allclose(flat.mean(0), 0, atol=1e-2)
    # a second build is a no-op (finished splits are skipped)
    mtime = (emb_dir / "train.npy").stat().st_mtime
    build_cache(codec, tiny_notes, emb_dir, seconds=1.0, progress=False)
    assert (emb_dir / "train.npy").stat().st_mtime == mtime


def test_seanet_baseline_trains(tiny_notes, tmp_path):
    cfg = TrainConfig(data=str(tiny_notes), steps=3, batch_size=2, crop_seconds=0.5, note_seconds=1.0,
                      ckpt_minutes=100, threads=1, audio_cache=str(tmp_path / "audio"), valid_notes=1)
    summary = train(cfg, tiny_config("seanet"), tmp_path / "run", progress=False)
    assert summary["steps"] == 3 and "stft" in summary["final_running_losses"]


def test_resume_cache_rows(tiny_notes, tmp_path):
    """An interrupted split continues from rows_done instead of starting over."""
    torch.manual_seed(0)
    from synth.codec.bundled import BundledCodec
    from synth.codec.cache import encode_split

    codec = BundledCodec(tiny_config("harmonic"))
    out = tmp_path / "emb"
    info = encode_split(codec, tiny_notes, "train", out, seconds=1.0, batch_size=4, progress=False)
    full = np.load(out / "train.npy").copy()
    info["rows_done"], info["complete"] = 4, False
    (out / "train.json").write_text(json.dumps(info))
    arr = np.load(out / "train.npy", mmap_mode="r+")
    arr[4:] = 0
    arr.flush()
    del arr
    encode_split(codec, tiny_notes, "train", out, seconds=1.0, batch_size=4, progress=False)
    assert np.array_equal(np.load(out / "train.npy"), full)


def test_sharded_cache_equals_single(tiny_notes, tmp_path):
    """Two shards (run one after the other here) fill the same array as one process and mark it complete."""
    torch.manual_seed(0)
    from synth.codec.bundled import BundledCodec

    codec = BundledCodec(tiny_config("harmonic"))
    build_cache(codec, tiny_notes, tmp_path / "one", splits=("train",), seconds=1.0, progress=False)
    first = build_cache(codec, tiny_notes, tmp_path / "two", splits=("train",), seconds=1.0, progress=False,
                        shard=(0, 2))
    assert first["splits"]["train"]["complete"] is False and "stats" not in first
    second = build_cache(codec, tiny_notes, tmp_path / "two", splits=("train",), seconds=1.0, progress=False,
                         shard=(1, 2))
    assert second["splits"]["train"]["complete"] is True and "stats" in second
    assert np.array_equal(np.load(tmp_path / "one" / "train.npy"), np.load(tmp_path / "two" / "train.npy"))
    assert len(EmbeddingCache(tmp_path / "two", "train")) == 10


def test_emb_norm_recalibration(tiny_notes, tmp_path):
    """With the embedding BatchNorm, recalibration sets exact running statistics: eval-mode embeddings of training
    crops come out with about unit variance per learned dim."""
    from synth.codec.bundled import CodecConfig, CodecModel
    from synth.codec.train import CropSampler, load_split_audio, recalibrate_norm

    torch.manual_seed(0)
    cfg = CodecConfig(**{**tiny_config().__dict__, "emb_norm": True, "pitch_feature": True, "pitch_feature_dims": 1})
    model = CodecModel(cfg)
    audio, pitches, _ = load_split_audio(tiny_notes, "train", 24_000, 24_000, tmp_path / "audio")
    sampler = CropSampler(audio, pitches, 12_160, 0.3, seed=0)
    assert recalibrate_norm(model, sampler, batches=8, batch_size=4)
    model.eval()
    wave, _ = CropSampler(audio, pitches, 12_160, 0.3, seed=1).batch(8)
    with torch.no_grad():
        emb = model.encode(wave)
    std = emb[..., :15].reshape(-1, 15).std(0)
    # untrained, the encoder's per-dim spread is ~1e-3; after recalibration it is of order one (loose bounds: ten
    # nearly identical test tones, so the spread differs from batch to batch)
    assert emb.shape[-1] == 16 and 0.05 < float(std.median()) < 20.0
    assert float(model.emb_norm.running_var.mean()) < 0.1  # no longer the initial 1.0


def test_decoder_fine_tune_keeps_the_embedding(tiny_notes, tmp_path):
    """--init-codec + --freeze-encoder: the decoder learns, the embedding (what every cache and model was built on)
    stays bit-identical, through a resume too."""
    base = dict(data=str(tiny_notes), batch_size=4, crop_seconds=0.5, note_seconds=1.0, lr=3e-3, warmup_steps=1,
                teacher_f0_steps=2, ckpt_minutes=100, log_every=1, threads=1, audio_cache=str(tmp_path / "audio"),
                valid_notes=1)
    train(TrainConfig(steps=4, **base), tiny_config("harmonic"), tmp_path / "first", progress=False,
          export=tmp_path / "start")
    start = load_codec(tmp_path / "start")
    fine = TrainConfig(steps=5, init_codec=str(tmp_path / "start"), freeze_encoder=True, harm_prior=1.0, **base)
    # the network flags given are ignored in favour of the folder's (a different hidden size would not load)
    # ... except onset fill, a decoding rule the fine-tune may switch on (no weights change shape), and the
    # harmonic prior's exponent, which the train config sets
    ignored = dataclasses.replace(tiny_config("harmonic"), hidden=8, name="tiny-fine", onset_fill=True)
    train(fine, ignored, tmp_path / "fine", progress=False)
    train(dataclasses.replace(fine, steps=7), ignored, tmp_path / "fine", progress=False, export=tmp_path / "tuned")
    tuned = load_codec(tmp_path / "tuned")
    assert tuned.config.hidden == start.config.hidden and tuned.config.name == "tiny-fine"
    assert tuned.config.onset_fill and not start.config.onset_fill
    assert (start.config.harm_prior, tuned.config.harm_prior) == (2.0, 1.0)
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 24_000)).astype(np.float32) * 0.1)
    with torch.no_grad():
        assert torch.equal(start.encode(wave), tuned.encode(wave))
        emb = start.encode(wave)
        assert not torch.allclose(start.decode(emb), tuned.decode(emb))
    a, b = start.model.state_dict(), tuned.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("decoder."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))


def test_log_mel_loss_is_logged_validated_and_counted(tiny_notes, tmp_path):
    """w_mel > 0 (the codec v6.2 experiment): the log-mel L1 is a logged loss of its own, enters the total with its weight and is in
    the validation record; a zero log-mel distance for identical audio, a positive one for a duller copy."""
    from synth.codec.train import spectral_loss

    cfg = TrainConfig(data=str(tiny_notes), steps=3, batch_size=2, crop_seconds=0.5, note_seconds=1.0, warmup_steps=1,
                      teacher_f0_steps=1, ckpt_minutes=100, log_every=1, threads=1, valid_notes=1,
                      audio_cache=str(tmp_path / "audio"), w_mel=0.5, mel_fft=256, mel_bins=32)
    spectral = spectral_loss(cfg, 24_000)
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 1, 12_000)).astype(np.float32) * 0.1)
    dull = torch.nn.functional.avg_pool1d(wave, 9, stride=1, padding=4)  # a low-passed copy: less high-band energy
    assert float(spectral.mel(wave, wave)) == 0.0 and float(spectral.mel(dull, wave)) > 0.1
    summary = train(cfg, tiny_config("harmonic"), tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "mel" in r]
    assert len(steps) == 3 and all(r["mel"] > 0 for r in steps)
    assert "mel" in summary["valid"] and summary["valid"]["mel"] > 0


def test_band_energy_loss_is_true_to_energy_and_trains(tiny_notes, tmp_path):
    """w_band > 0 (the codec v6.3 run): the band loss reads band energies, not single draws. Two draws of the same
    noise are nearer each other than either is to a copy 3 dB quieter, a 6 dB quieter copy costs log10(4) bels in
    every band, silence against silence costs nothing; the loss is logged, validated and trains."""
    from synth.codec.train import BandEnergyLoss

    band = BandEnergyLoss(24_000, n_fft=256, n_mels=32, pool=4)
    rng = np.random.default_rng(2)
    a, b = (torch.from_numpy(rng.uniform(-0.1, 0.1, (4, 24_000)).astype(np.float32)) for _ in range(2))
    assert abs(float(band(0.5 * a, a)) - np.log10(4)) < 1e-4
    assert float(band(a, b)) < float(band(a * 10 ** (-3 / 20), a))
    assert float(band(torch.zeros(1, 4_000), torch.zeros(1, 4_000))) == 0.0
    cfg = TrainConfig(data=str(tiny_notes), steps=3, batch_size=2, crop_seconds=0.5, note_seconds=1.0, warmup_steps=1,
                      teacher_f0_steps=1, ckpt_minutes=100, log_every=1, threads=1, valid_notes=1,
                      audio_cache=str(tmp_path / "audio"), w_band=1.0, band_fft=256, band_bins=32)
    summary = train(cfg, tiny_config("harmonic"), tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len([r for r in rows if r.get("band", 0) > 0]) == 3
    assert summary["valid"]["band"] > 0


def test_envelope_loss_reads_level_in_short_windows_and_trains(tiny_notes, tmp_path):
    """w_env > 0 (the codec v6.4 run): a copy 6 dB quieter costs 6/20 everywhere, the same level with another
    waveform costs ~nothing, a 10 ms later onset costs more than a 1 ms later one; logged, validated, trains."""
    from synth.codec.train import EnvelopeLoss

    env = EnvelopeLoss(160)
    rng = np.random.default_rng(3)
    a, b = (torch.from_numpy(rng.uniform(-0.1, 0.1, (2, 24_000)).astype(np.float32)) for _ in range(2))
    assert abs(float(env(0.5 * a, a)) - np.log10(2)) < 1e-4
    assert float(env(a, b)) < 0.05
    late = [torch.nn.functional.pad(a[:, : 24_000 - k], (k, 0)) for k in (24, 240)]
    assert float(env(late[1], a)) > float(env(late[0], a))
    cfg = TrainConfig(data=str(tiny_notes), steps=3, batch_size=2, crop_seconds=0.5, note_seconds=1.0, warmup_steps=1,
                      teacher_f0_steps=1, ckpt_minutes=100, log_every=1, threads=1, valid_notes=1,
                      audio_cache=str(tmp_path / "audio"), w_env=1.0)
    summary = train(cfg, tiny_config("harmonic"), tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len([r for r in rows if r.get("env", 0) > 0]) == 3
    assert summary["valid"]["env"] > 0


@pytest.mark.parametrize("value", ["nan", "-1", "9"])
def test_codec_train_refuses_a_harm_prior_out_of_range(value, capsys, tmp_path):
    """--harm-prior is validated at the boundary: the run exits 2 naming the flag and writes nothing."""
    from synth.cli import main

    assert main(["codec", "train", "--out", str(tmp_path / "run"), "--minutes", "1", "--harm-prior", value]) == 2
    assert "--harm-prior" in capsys.readouterr().out and not (tmp_path / "run").exists()


def test_a_run_that_trains_the_encoder_validates_with_fresh_batchnorm_statistics(tiny_notes, tmp_path):
    """A run that trains the encoder re-estimates the embedding BatchNorm's running statistics before it validates:
    the checkpoint written right after the last validation holds statistics of the encoder (the tiny untrained one's
    per-dim variance is ~1e-5), not the initial 1.0 that momentum 0.01 would still remember after a few steps."""
    from synth.codec.bundled import CodecConfig

    cfg = TrainConfig(data=str(tiny_notes), steps=6, batch_size=4, crop_seconds=0.5, note_seconds=1.0, lr=3e-3,
                      warmup_steps=1, teacher_f0_steps=2, ckpt_minutes=100, log_every=1, threads=1,
                      audio_cache=str(tmp_path / "audio"), valid_notes=1)
    codec_cfg = CodecConfig(**{**tiny_config().__dict__, "emb_norm": True, "emb_norm_eps": 1e-12,
                               "pitch_feature": True, "pitch_feature_dims": 1})
    summary = train(cfg, codec_cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert summary["valid"]["step"] == 6 and np.isfinite(summary["valid"]["stft"])
    assert float(state["model"]["emb_norm.running_var"].mean()) < 0.1
