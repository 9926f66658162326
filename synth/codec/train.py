"""Training the bundled codec: random crops of training-split notes, multi-resolution STFT loss (+ the f0 term for
the harmonic decoder), time-budgeted, checkpointed and resumable.

Why time budgets: the harmonic codec and the SEANet baseline are compared at equal wall-clock on the same CPU, so
``--minutes`` counts training time across resumes (stored in the checkpoint). Why the f0 term: the harmonic decoder's
pitch is read from the embedding by the f0 head, supervised with the note's known pitch (cross-entropy over 20-cent
log-frequency bins, i.e. a loss in cents), so the embedding must carry pitch and the generator decides it. For the first ``teacher_f0_steps`` the
oscillators run at the true pitch (teacher forcing) so the amplitude heads learn from in-tune harmonics while the f0
head is still wrong; afterwards they run at the predicted pitch, as at inference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from synth import distributed
from synth.atomic import save_torch
from synth.codec.bundled import CodecConfig, CodecModel, load_bundled, save_codec
from synth.codec.harmonic import midi_to_hz
from synth.codec.notes import load_note_audio, read_notes

CHECKPOINT = "checkpoint.pt"
# Training crops the embedding BatchNorm is recalibrated on before each validation of a run that trains the encoder
VALID_RECAL_BATCHES = 32


@dataclass
class TrainConfig:
    data: str = "data/notes"
    minutes: float = 0.0  # training wall-clock budget (0 = no limit); counted across resumes
    steps: int = 0  # step budget (0 = no limit); at least one of the two must be set
    batch_size: int = 8
    crop_seconds: float = 1.0
    note_seconds: float = 4.0
    onset_prob: float = 0.3  # share of crops that start at the note onset (attacks matter to the ear)
    lr: float = 1e-3
    warmup_steps: int = 100
    w_f0: float = 0.5  # weight of the f0 loss (cross-entropy over 20-cent bins, Gaussian targets of 25 cents)
    teacher_f0_steps: int = 300
    w_emb: float = 1e-3  # L2 penalty on the learned embedding dims (keeps the scale sane without a saturating tanh)
    emb_noise: float = 0.0  # Gaussian noise on the learned dims during training (robustness to generator error)
    # Penalty on frame-to-frame change of the learned dims (mean squared difference; with --emb-norm the dims have
    # unit variance, so white noise costs 2 and a constant code 0). Why: without it the v4 code was white over time
    # (lag-1 autocorrelation -0.10 on 200 test notes, 96% of its variance within a note) and the decoder read
    # loudness from those fluctuations, so any regression to a mean (VAE decoder, generator) decoded ~40 dB quiet.
    w_smooth: float = 0.0
    silence_rms: float = 3e-3  # frames below this RMS are left out of the f0 loss (no pitch to hear)
    ckpt_minutes: float = 3.0
    log_every: int = 25
    valid_notes: int = 8
    threads: int = 2
    seed: int = 0
    audio_cache: str = "runs/codec/_audio"
    notes_file: str = ""  # optional: train only on the note_strs listed here (same data for runs compared)
    # The spectral loss's FFT sizes (hop = size / 4) and the weight of its linear-magnitude term. v1-v5: 2048/512/128,
    # log magnitudes only, which hear a -40 dB noise floor as well as a -10 dB one and so left the noise branch
    # unused; v6 adds linear magnitudes (loud partials and noise energy count by their energy) and a 64-sample
    # windows (2.7 ms) that resolve attacks and high-frequency bursts.
    stft_ffts: tuple[int, ...] = (2048, 512, 128)
    w_lin_mag: float = 0.0
    # A log-mel magnitude L1 beside the MR-STFT (the v6.2 experiment, not shipped: CODEC_CARD.md). Why tried: the
    # MR-STFT's log term is an L1 over single bins, where a noisy partial or noise band is one random draw against
    # another; mel bands average many bins and count every band alike. Measured (75 min on v6.1's decoder, w_mel 1):
    # timbre spread 0.791 -> 0.805 of real, log-mel 0.575 -> 0.564, but the held part's energy above 6 kHz fell from
    # 5.1 to 6.3 dB under real (an L1 on log energies seeks the median of a noisy band, which lies under its mean).
    w_mel: float = 0.0
    mel_fft: int = 1024
    mel_bins: int = 96
    # An energy-true band loss (the v6.3 run): mel band POWERS averaged over ``band_pool`` STFT frames, then the L1 of
    # their logs (dB / 10). Why: v6.2's log-mel L1 compares the log of single frames' magnitudes, whose optimum for
    # a noise-like band is the median draw, under its mean energy, so the decoder learned to under-fill noise (>6 kHz
    # fell 1.2 dB further under real). The log of an energy averaged over ~43 ms and a few bins sits at the mean, so
    # the optimum is the band's true energy; every band counts alike, the high ones included.
    w_band: float = 0.0
    band_fft: int = 1024
    band_bins: int = 64
    band_pool: int = 4
    # A level-envelope loss (v6.4): L1 between log10 RMS levels of 6.7 ms windows (hop 3.3 ms) of the decoded and the
    # real crop. Why: at the frame rate the round trip tracks the real level within 1-3 dB, but 1-3 dB under it
    # during the first ~150 ms of sustained notes (synth lead, reed, brass), which is what makes their measured 10-90%
    # attack 2-4x real; the MR-STFT weighs that little beside the spectra.
    w_env: float = 0.0
    env_window: int = 160
    # Decoder fine-tuning: start from an exported codec folder (its config replaces the one given) and, with
    # freeze_encoder, train only the decoder so that the embedding every later stage was trained on stays the same
    # (no re-encode, no VAE/generator retraining). The export then skips the BatchNorm recalibration.
    init_codec: str = ""
    freeze_encoder: bool = False
    # A fine-tune may give its decoder another harmonic prior exponent (CodecConfig.harm_prior) than the folder it
    # starts from; None keeps the folder's. The weights are not compensated: a flatter prior starts the high
    # harmonics loud, where their gradient is strong, for training to pull down what the real notes lack (tried in
    # session 14 with p = 1 and 1.5: the brightest notes got brighter, the dull low ones stayed dull).
    harm_prior: float | None = None


@dataclass
class SpectralLoss:
    """The training's spectral losses: the MR-STFT (always) and, where their weights are > 0, a log-mel magnitude L1
    and the energy-true band loss."""

    mrstft: Callable
    mel: Callable | None = None
    w_mel: float = 0.0
    band: Callable | None = None
    w_band: float = 0.0
    env: Callable | None = None
    w_env: float = 0.0


class EnvelopeLoss(torch.nn.Module):
    """L1 between the log10 RMS levels (dB / 20) of ``window``-sample windows, hop ``window // 2``; levels under
    ``floor_db`` (re full scale) count as the floor."""

    def __init__(self, window: int = 160, floor_db: float = -80.0):
        super().__init__()
        self.window, self.floor = window, 10.0 ** (floor_db / 10.0)

    def levels(self, wave: torch.Tensor) -> torch.Tensor:
        power = F.avg_pool1d(wave.reshape(wave.shape[0], 1, -1).square(), self.window, self.window // 2)
        return 0.5 * torch.log10(power[:, 0] + self.floor)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.levels(pred) - self.levels(target)).abs().mean()


class BandEnergyLoss(torch.nn.Module):
    """L1 between the logs (in bels: dB / 10) of mel band powers averaged over ``pool`` STFT frames.

    ``floor_db`` (re full scale) keeps bands far under anything audible from weighing in: the log of an energy near
    zero is dominated by its floor, not by the sound."""

    def __init__(self, sample_rate: int, n_fft: int = 1024, n_mels: int = 64, pool: int = 4, floor_db: float = -100.0):
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels,
                                                        power=2.0, center=True, norm="slaney", mel_scale="slaney")
        self.pool, self.floor = pool, 10.0 ** (floor_db / 10.0)

    def band_bels(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave[B, S]`` (or ``[B, 1, S]``) -> ``[B, n_mels, frames // pool]`` log10 of the pooled band powers."""
        power = self.mel(wave.reshape(wave.shape[0], -1)) / self.mel.spectrogram.window.square().sum()
        pooled = F.avg_pool1d(power, self.pool, self.pool, ceil_mode=True)
        return torch.log10(pooled + self.floor)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.band_bels(pred) - self.band_bels(target)).abs().mean()


def spectral_loss(cfg: TrainConfig, sample_rate: int) -> SpectralLoss:
    mel = None
    if cfg.w_mel > 0:
        import auraloss

        mel = auraloss.freq.MelSTFTLoss(sample_rate, fft_size=cfg.mel_fft, hop_size=cfg.mel_fft // 4,
                                        win_length=cfg.mel_fft, n_mels=cfg.mel_bins, w_sc=0.0, w_log_mag=1.0)
    band = BandEnergyLoss(sample_rate, cfg.band_fft, cfg.band_bins, cfg.band_pool) if cfg.w_band > 0 else None
    env = EnvelopeLoss(cfg.env_window) if cfg.w_env > 0 else None
    return SpectralLoss(mrstft_loss(tuple(cfg.stft_ffts), cfg.w_lin_mag), mel, cfg.w_mel, band, cfg.w_band, env,
                        cfg.w_env)


def mrstft_loss(ffts: tuple[int, ...] = (2048, 512, 128), w_lin_mag: float = 0.0):
    """The training spectral loss: spectral convergence + log magnitude (+ linear magnitude) at several resolutions
    (default three, 85 ms to 5 ms windows at 24 kHz, for CPU time)."""
    import auraloss

    ffts = list(ffts)
    return auraloss.freq.MultiResolutionSTFTLoss(fft_sizes=ffts, hop_sizes=[f // 4 for f in ffts], win_lengths=ffts,
                                                 w_lin_mag=w_lin_mag)


def load_split_audio(data: str | Path, split: str, sample_rate: int, num_samples: int, cache_dir: str | Path,
                     limit: int | None = None, only: set[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All notes of a split as int16 ``[N, S]`` (memory-mapped npy cache, built once) + pitches + note names.

    Why a cache: decoding thousands of WAVs on every run costs minutes; an int16 memmap costs nothing to reopen and
    lets the page cache share it between the harmonic and baseline runs.
    """
    notes = read_notes(data, split)
    if only is not None:
        notes = [n for n in notes if n.note_str in only]
    if limit is not None:
        notes = notes[:limit]
    if not notes:
        raise FileNotFoundError(f"split {split!r} of {data} has no notes")
    names = [n.note_str for n in notes]
    key = hashlib.sha1(("\n".join(names) + f"|{Path(data).resolve()}|{sample_rate}|{num_samples}").encode()).hexdigest()[:12]
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{split}-{key}.npy"
    done = cache_dir / f"{split}-{key}.done"
    pitches = np.array([int(n.pitch) for n in notes], dtype=np.int64)
    if not done.exists():
        from tqdm import tqdm

        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(len(notes), num_samples))
        for i, note in enumerate(tqdm(notes, desc=f"loading {split} audio", unit="note")):
            wave = load_note_audio(note, sample_rate, num_samples)
            arr[i] = np.clip(np.round(wave * 32767), -32768, 32767).astype(np.int16)
        arr.flush()
        del arr
        done.write_text(json.dumps({"notes": len(notes)}))
    return np.load(path, mmap_mode="r"), pitches, names


class CropSampler:
    """Random crops (a share starting at the onset) of a note array; seeded, state saved in checkpoints."""

    def __init__(self, audio: np.ndarray, pitches: np.ndarray, crop: int, onset_prob: float, seed: int):
        self.audio, self.pitches, self.crop, self.onset_prob = audio, pitches, crop, onset_prob
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int,
              shard: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random crops; with ``shard`` (multi-process training) the global batch of ``size`` is drawn
        (so the generator stays alike on every rank) and only this rank's share of it is read."""
        idx = self.rng.integers(0, len(self.audio), size)
        max_start = self.audio.shape[1] - self.crop
        starts = self.rng.integers(0, max_start + 1, size)
        starts[self.rng.random(size) < self.onset_prob] = 0
        if shard is not None:
            idx, starts = shard(idx), shard(starts)
        waves = np.stack([self.audio[i, s:s + self.crop] for i, s in zip(idx, starts)]).astype(np.float32) / 32767
        return torch.from_numpy(waves), torch.from_numpy(self.pitches[idx].astype(np.float32))


def frame_rms(wave: torch.Tensor, hop: int) -> torch.Tensor:
    frames = wave.shape[-1] // hop
    return wave[..., : frames * hop].reshape(*wave.shape[:-1], frames, hop).square().mean(-1).sqrt()


def compute_losses(model: CodecModel, wave: torch.Tensor, pitch: torch.Tensor, spectral: SpectralLoss,
                   cfg: TrainConfig, step: int) -> dict[str, torch.Tensor]:
    emb = model.encode(wave)
    learned = model.config.learned_dims
    emb_l2 = emb[..., :learned].square().mean()
    smooth = (emb[:, 1:, :learned] - emb[:, :-1, :learned]).square().mean()
    if cfg.emb_noise > 0 and model.training:
        noise = cfg.emb_noise * torch.randn_like(emb[..., :learned])
        emb = torch.cat([emb[..., :learned] + noise, emb[..., learned:]], dim=-1)
    losses: dict[str, torch.Tensor] = {}
    if model.config.arch == "harmonic":
        frames = emb.shape[1]
        target_hz = midi_to_hz(pitch)[:, None].expand(-1, frames)
        teacher = model.training and step < cfg.teacher_f0_steps
        pred, ctrl = model.decode(emb, f0_hz=target_hz if teacher else None)
        mask = (frame_rms(wave, model.config.hop_length) > cfg.silence_rms).float()
        if "f0_logits" in ctrl:  # pitch classified from the embedding: cross-entropy per frame
            target = model.decoder.f0_targets(pitch[:, None].expand(-1, frames))
            err = -(target * torch.log_softmax(ctrl["f0_logits"], -1)).sum(-1)
        else:  # pitch dimension + learned correction: L1 in semitones (a loss in cents / 100)
            err = (ctrl["f0_midi"] - pitch[:, None]).abs()
        losses["f0"] = (err * mask).sum() / mask.sum().clamp_min(1.0)
        with torch.no_grad():
            cents = (ctrl["f0_midi"] - pitch[:, None]).abs() * 100
            losses["f0_cents"] = (cents * mask).sum() / mask.sum().clamp_min(1.0)
    else:
        pred, _ = model.decode(emb)
    losses["stft"] = spectral.mrstft(pred[:, None], wave[:, None])
    if spectral.mel is not None:
        losses["mel"] = spectral.mel(pred[:, None], wave[:, None])
    if spectral.band is not None:
        losses["band"] = spectral.band(pred, wave)
    if spectral.env is not None:
        losses["env"] = spectral.env(pred, wave)
    losses["emb_l2"] = emb_l2
    losses["smooth"] = smooth
    losses["total"] = (losses["stft"] + (cfg.w_f0 * losses["f0"] if "f0" in losses else 0.0) + cfg.w_emb * emb_l2
                       + cfg.w_smooth * smooth + (spectral.w_mel * losses["mel"] if "mel" in losses else 0.0)
                       + (spectral.w_band * losses["band"] if "band" in losses else 0.0)
                       + (spectral.w_env * losses["env"] if "env" in losses else 0.0))
    return losses


def _lr(cfg: TrainConfig, step: int, elapsed: float) -> float:
    frac = 0.0
    if cfg.steps:
        frac = max(frac, step / cfg.steps)
    if cfg.minutes:
        frac = max(frac, elapsed / (cfg.minutes * 60))
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    return cfg.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


@torch.no_grad()
def recalibrate_norm(model: CodecModel, sampler: "CropSampler", batches: int = 64, batch_size: int = 8) -> bool:
    """Re-estimate the embedding BatchNorm's running statistics as an exact average over ``batches`` training crops.

    Why: with momentum 0.01 the running variance still remembers its initial 1.0 for hundreds of steps while the
    encoder's true per-dim variance is ~1e-5, so inference-mode embeddings are shrunk (valid loss 3.0 vs train 1.9
    at step 273, measured). Done before every export; a no-op without ``emb_norm``.
    """
    norm = getattr(model, "emb_norm", None)
    if norm is None:
        return False
    was_training = model.training
    norm.reset_running_stats()
    norm.momentum = None  # cumulative average
    model.train()
    for _ in range(batches):
        wave, _ = sampler.batch(batch_size)
        wave = wave.to(norm.running_mean.device)
        norm(model.encoder(wave[:, None]))
    norm.momentum = 0.01
    model.train(was_training)
    return True


def _save_checkpoint(path: Path, model, opt, step: int, elapsed: float, sampler: CropSampler, cfg: TrainConfig,
                     history: list) -> None:
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed_s": elapsed,
             "torch_rng": torch.get_rng_state(), "sampler_rng": sampler.rng.bit_generator.state,
             "train_config": dataclasses.asdict(cfg), "codec_config": dataclasses.asdict(model.config),
             "valid_history": history}
    save_torch(state, path)


@torch.no_grad()
def validate(model: CodecModel, audio: np.ndarray, pitches: np.ndarray, spectral: SpectralLoss,
             cfg: TrainConfig) -> dict:
    """Spectral loss (and f0 error) of whole validation notes, with the pitch the model predicts itself."""
    model.eval()
    dev = next(model.parameters()).device
    wave = torch.from_numpy(np.asarray(audio, dtype=np.float32) / 32767).to(dev)
    pitch = torch.from_numpy(pitches.astype(np.float32)).to(dev)
    losses = compute_losses(model, wave, pitch, spectral, cfg, step=1 << 30)
    model.train()
    return {k: round(float(v), 4) for k, v in losses.items()}


def train(cfg: TrainConfig, codec_cfg: CodecConfig, out: str | Path, fresh: bool = False,
          export: str | Path | None = None, progress: bool = True, device: str = "cpu") -> dict:
    """Train (or resume) into ``out``; returns a summary. Writes ``out/codec`` (shipping folder) at the end.

    Under torchrun (see ``synth.distributed``) every rank draws the same global
    batch of crops and reads its share; rank 0 builds the audio cache, validates, writes the files and keeps the
    clock (the ``minutes`` budget and the learning rate follow rank 0's elapsed time). ``device``: where the model
    trains (``cuda:N`` under torchrun on GPUs; crops are read on the CPU and moved there)."""
    from tqdm import tqdm

    dd = distributed.context(device)

    if not cfg.minutes and not cfg.steps:
        raise ValueError("set a budget: minutes and/or steps")
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    if dd.is_main():
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    resume = ckpt_path.exists() and not fresh
    if resume:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        codec_cfg = CodecConfig.from_dict(state["codec_config"])
        saved = TrainConfig(**state["train_config"])
        # the budget and logging may change on resume; the recipe may not
        cfg = dataclasses.replace(saved, minutes=cfg.minutes, steps=cfg.steps, ckpt_minutes=cfg.ckpt_minutes,
                                  log_every=cfg.log_every, threads=cfg.threads, data=cfg.data,
                                  audio_cache=cfg.audio_cache, notes_file=saved.notes_file or cfg.notes_file)
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    init_state = None
    if cfg.init_codec and not resume:
        init = load_bundled(cfg.init_codec)
        # the folder's architecture and weights; the name given (if any) marks the fine-tuned codec, and onset fill
        # (a decoding rule, no weights) may be switched on for it
        codec_cfg = dataclasses.replace(init.config, name=codec_cfg.name or init.config.name,
                                        onset_fill=init.config.onset_fill or codec_cfg.onset_fill,
                                        harm_prior=cfg.harm_prior if cfg.harm_prior is not None
                                        else init.config.harm_prior)
        init_state = init.model.state_dict()
    model = CodecModel(codec_cfg)
    if init_state is not None:
        model.load_state_dict(init_state)
    if cfg.freeze_encoder:
        model.freeze_encoder()
    model = model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, betas=(0.8, 0.99), weight_decay=0.0)
    sr, hop = codec_cfg.sample_rate, codec_cfg.hop_length
    note_len = int(round(cfg.note_seconds * sr / hop)) * hop
    crop = min(note_len, int(round(cfg.crop_seconds * sr / hop)) * hop)
    only = set(Path(cfg.notes_file).read_text().split()) if cfg.notes_file else None
    audio, pitches, names, v_audio, v_pitch = _load_audio(dd, cfg, sr, note_len, only)
    if dd.is_main():
        (out / "train_notes.txt").write_text("\n".join(names) + "\n")
    sampler = CropSampler(audio, pitches, crop, cfg.onset_prob, cfg.seed)
    step, elapsed, history = 0, 0.0, []
    if resume:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed, history = state["step"], state["elapsed_s"], state.get("valid_history", [])
        torch.set_rng_state(state["torch_rng"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
    if dd.is_main():
        (out / "train_config.json").write_text(json.dumps({"train": dataclasses.asdict(cfg),
                                                            "codec": dataclasses.asdict(codec_cfg)}, indent=2) + "\n")
    spectral = spectral_loss(cfg, sr)
    model.train()
    loss_of = dd.wrap(model, compute_losses)  # compute_losses(model, ...) in a world of one, else inside DDP
    log = (out / "log.jsonl").open("a") if dd.is_main() else io.StringIO()  # other ranks log nowhere
    run_avg: dict[str, float] = {}
    bar = tqdm(total=cfg.steps or None, initial=step, desc=f"codec {codec_cfg.arch}", unit="step",
               disable=not (progress and dd.is_main()), mininterval=2.0)
    last_ckpt = time.monotonic()
    t_prev = time.monotonic()

    def done() -> bool:
        return bool((cfg.steps and step >= cfg.steps) or (cfg.minutes and elapsed >= cfg.minutes * 60))

    while not done():
        lr = _lr(cfg, step, elapsed)
        for group in opt.param_groups:
            group["lr"] = lr
        dd.seed_step(cfg.seed, step)
        wave, pitch = sampler.batch(cfg.batch_size, dd.shard)
        wave, pitch = wave.to(device), pitch.to(device)
        losses = loss_of(wave, pitch, spectral, cfg, step)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        step += 1
        now = time.monotonic()
        elapsed = dd.from_main(elapsed + now - t_prev)  # rank 0's clock: the budget and the lr agree on every rank
        t_prev = now
        values = dd.mean({k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in losses.items()})
        for k, val in values.items():
            run_avg[k] = val if k not in run_avg else 0.95 * run_avg[k] + 0.05 * val
        bar.update(1)
        if step % 5 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in run_avg.items() if k != "total"})
        if step % cfg.log_every == 0:
            log.write(json.dumps({"step": step, "elapsed_s": round(elapsed, 1), "lr": lr,
                                  **{k: round(v, 4) for k, v in run_avg.items()}}) + "\n")
            log.flush()
        if dd.is_main() and (now - last_ckpt >= cfg.ckpt_minutes * 60 or done()):
            if v_audio is not None:
                t0 = time.monotonic()
                if not cfg.freeze_encoder:
                    # while the encoder trains, the BatchNorm's running statistics (momentum 0.01) lag its batch
                    # statistics, and eval-mode embeddings drift off: v7j's valid MR-STFT read 2.3-2.7 while its
                    # recalibrated export measured 1.37 held-out. Re-estimate them first, from crops of their own.
                    recalibrate_norm(model, CropSampler(audio, pitches, crop, cfg.onset_prob, cfg.seed + 1),
                                     batches=VALID_RECAL_BATCHES, batch_size=cfg.batch_size)
                val = validate(model, v_audio, v_pitch, spectral, cfg)
                history.append({"step": step, "elapsed_s": round(elapsed, 1), **val})
                log.write(json.dumps({"step": step, "valid": val}) + "\n")
                log.flush()
                t_prev += time.monotonic() - t0  # validation time is not training time
            _save_checkpoint(ckpt_path, model, opt, step, elapsed, sampler, cfg, history)
            last_ckpt = time.monotonic()
            t_prev = last_ckpt
    bar.close()
    log.close()
    if dd.is_main() and (not history or history[-1]["step"] != step):
        _save_checkpoint(ckpt_path, model, opt, step, elapsed, sampler, cfg, history)
    # on every rank (same crops from the shared sampler, same weights): the ranks' models stay alike
    if not cfg.freeze_encoder:  # a frozen encoder keeps the statistics its embeddings were cached with
        recalibrate_norm(model, sampler)
    model.eval()
    if dd.is_main():
        save_codec(model, out / "codec")
        if export:
            save_codec(model, export)
    summary = {"arch": codec_cfg.arch, "steps": step, "train_instruments": len({n.rsplit("-", 2)[0] for n in names}), "train_seconds": round(elapsed, 1), "threads": cfg.threads,
               "batch_size": cfg.batch_size, "crop_seconds": cfg.crop_seconds, "train_notes": int(len(audio)),
               "final_running_losses": {k: round(v, 4) for k, v in run_avg.items()},
               "valid": history[-1] if history else None, "out": str(out)}
    if dd.is_main():
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    dd.barrier()  # every rank returns once rank 0's files are written (a next command may read them)
    return summary


def _load_audio(dd: distributed.Dist, cfg: TrainConfig, sr: int, note_len: int, only: set[str] | None):
    """(train audio, pitches, names, valid audio, valid pitches) of the run (valid None when there is no valid split).

    Rank 0 builds the int16 caches first, the others open them after a barrier: two ranks writing one memmap at
    once would corrupt it."""
    if not dd.is_main():
        dd.barrier()
    audio, pitches, names = load_split_audio(cfg.data, "train", sr, note_len, cfg.audio_cache, only=only)
    try:
        v_audio, v_pitch, _ = load_split_audio(cfg.data, "valid", sr, note_len, cfg.audio_cache)
        pick = np.linspace(0, len(v_audio) - 1, min(cfg.valid_notes, len(v_audio))).round().astype(int)
        v_audio, v_pitch = np.asarray(v_audio[pick]), v_pitch[pick]
    except FileNotFoundError:
        v_audio = v_pitch = None
    if dd.is_main():
        dd.barrier()
    return audio, pitches, names, v_audio, v_pitch
