"""``python -m synth codec train``: train the bundled codec (harmonic or SEANet baseline), resuming when ``--out``
already holds a checkpoint. Prints a JSON summary as its last line."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    from synth.codec.bundled import CodecConfig
    from synth.codec.train import TrainConfig

    t, c = TrainConfig(), CodecConfig()
    parser.add_argument("--data", default=t.data, help="dataset root in NSynth layout (default %(default)s)")
    parser.add_argument("--out", required=True, help="run folder (checkpoint, log.jsonl, codec/), e.g. runs/codec/harmonic")
    parser.add_argument("--arch", choices=("harmonic", "seanet"), default="harmonic")
    parser.add_argument("--minutes", type=float, default=t.minutes, help="training wall-clock budget, across resumes")
    parser.add_argument("--steps", type=int, default=t.steps, help="step budget (0 = none)")
    parser.add_argument("--batch-size", type=int, default=t.batch_size)
    parser.add_argument("--crop-seconds", type=float, default=t.crop_seconds)
    parser.add_argument("--lr", type=float, default=t.lr)
    parser.add_argument("--w-f0", type=float, default=t.w_f0)
    parser.add_argument("--teacher-f0-steps", type=int, default=t.teacher_f0_steps,
                        help="steps with oscillators at the true pitch (afterwards: the predicted pitch)")
    parser.add_argument("--w-emb", type=float, default=t.w_emb, help="L2 penalty on the learned embedding dims")
    parser.add_argument("--emb-tanh", action="store_true", help="bound the embedding with tanh (saturated in our runs)")
    parser.add_argument("--emb-norm", action="store_true", help="BatchNorm (no affine) on the learned embedding dims")
    parser.add_argument("--emb-noise", type=float, default=t.emb_noise,
                        help="Gaussian noise on the learned embedding dims while training")
    parser.add_argument("--w-smooth", type=float, default=t.w_smooth,
                        help="penalty on frame-to-frame change of the learned dims (keeps the code regressable)")
    parser.add_argument("--stft-ffts", type=lambda t: tuple(int(x) for x in t.split(",")), default=t.stft_ffts,
                        help="spectral loss FFT sizes, comma list (default 2048,512,128; v6: 2048,512,128,64)")
    parser.add_argument("--w-lin-mag", type=float, default=t.w_lin_mag, help="weight of the linear-magnitude term")
    parser.add_argument("--w-mel", type=float, default=t.w_mel,
                        help="weight of a log-mel magnitude L1 beside the MR-STFT (0 = off; the v6.2 experiment: 1, not shipped)")
    parser.add_argument("--mel-fft", type=int, default=t.mel_fft, help="FFT size of the log-mel loss (hop = size / 4)")
    parser.add_argument("--mel-bins", type=int, default=t.mel_bins, help="mel bands of the log-mel loss")
    parser.add_argument("--w-band", type=float, default=t.w_band,
                        help="weight of the energy-true band loss: L1 of log mel band powers averaged over a few "
                             "frames (0 = off)")
    parser.add_argument("--band-fft", type=int, default=t.band_fft, help="FFT size of the band loss (hop = size / 4)")
    parser.add_argument("--band-bins", type=int, default=t.band_bins, help="mel bands of the band loss")
    parser.add_argument("--band-pool", type=int, default=t.band_pool, help="STFT frames averaged per band energy")
    parser.add_argument("--w-env", type=float, default=t.w_env,
                        help="weight of the level-envelope loss: L1 of log RMS levels of short windows (0 = off)")
    parser.add_argument("--env-window", type=int, default=t.env_window, help="samples per level of the envelope loss")
    parser.add_argument("--emb-norm-eps", type=float, default=c.emb_norm_eps,
                        help="epsilon of the embedding BatchNorm (v6: 1e-12; 1e-5 let the learned dims shrink)")
    parser.add_argument("--loudness-feature", action="store_true",
                        help="v6: one embedding dim carries the frame level and drives the decoder's amplitude")
    parser.add_argument("--fine-env", type=int, default=c.fine_env, help="v6: sub-frame gain points per frame (0 = off)")
    parser.add_argument("--onset-fill", action="store_true",
                        help="v6.3: a note's first frame plays at the next frame's level (sharp attacks); with "
                             "--init-codec it switches the fine-tuned decoder to it")
    parser.add_argument("--noise-init-db", type=float, default=c.noise_init_db,
                        help="v6: initial noise level relative to the amplitude")
    parser.add_argument("--yin-win", type=int, default=c.yin_win, help="YIN window for the pitch dim (v6: 2048)")
    parser.add_argument("--yin-fmin", type=float, default=c.yin_fmin, help="YIN lowest f0 (v6: 25)")
    parser.add_argument("--yin-fmax", type=float, default=c.yin_fmax, help="YIN highest f0 (v6: 4500)")
    parser.add_argument("--ckpt-minutes", type=float, default=t.ckpt_minutes)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared 2-core CPU, 2 threads ran ~10x slower per step)")
    parser.add_argument("--seed", type=int, default=t.seed)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda; under torchrun each rank takes "
                        "cuda:LOCAL_RANK (see the README's multi-GPU section)")
    parser.add_argument("--audio-cache", default=t.audio_cache, help="where the int16 note arrays are cached")
    parser.add_argument("--notes-file", default="", help="train only on these note_strs (e.g. another run's train_notes.txt)")
    parser.add_argument("--dim", type=int, default=c.dim, help="embedding size D")
    parser.add_argument("--enc-filters", type=int, default=c.enc_filters)
    parser.add_argument("--enc-lstm", type=int, default=c.enc_lstm)
    parser.add_argument("--pitch-feature", action="store_true",
                        help="harmonic: the last two embedding dims carry a YIN pitch track (see synth/dsp/pitch.py)")
    parser.add_argument("--pitch-feature-dims", type=int, default=2, choices=(1, 2),
                        help="YIN dims in the embedding: 1 = pitch, 2 = pitch + periodicity")
    parser.add_argument("--hidden", type=int, default=c.hidden, help="harmonic decoder width")
    parser.add_argument("--n-blocks", type=int, default=c.n_blocks)
    parser.add_argument("--n-harmonics", type=int, default=c.n_harmonics)
    parser.add_argument("--n-noise-bands", type=int, default=c.n_noise_bands)
    parser.add_argument("--dec-filters", type=int, default=c.dec_filters, help="SEANet baseline decoder width")
    parser.add_argument("--dec-lstm", type=int, default=c.dec_lstm)
    parser.add_argument("--name", default=None, help="codec name stored in its config (default: the arch)")
    parser.add_argument("--init-codec", default=t.init_codec,
                        help="start from this exported codec folder (its config and weights; the flags above that "
                             "describe the network are then ignored)")
    parser.add_argument("--freeze-encoder", action="store_true",
                        help="train only the decoder: the embedding (and every cache, VAE and generator built on it) "
                             "stays the same; use with --init-codec")
    parser.add_argument("--harm-prior", type=float, default=None,
                        help="exponent p of the harmonic amplitudes' 1/k^p prior (default: 2 for a new codec, the "
                             "folder's for --init-codec)")
    parser.add_argument("--onset-prob", type=float, default=t.onset_prob,
                        help="share of crops that start at the note onset (default %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--export", default=None, help="also write the shipping folder here, e.g. models/default/codec")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from synth.codec.bundled import CodecConfig
    from synth.codec.train import TrainConfig, train

    cfg = TrainConfig(data=args.data, minutes=args.minutes, steps=args.steps, batch_size=args.batch_size,
                      crop_seconds=args.crop_seconds, lr=args.lr, w_f0=args.w_f0,
                      teacher_f0_steps=args.teacher_f0_steps, emb_noise=args.emb_noise, w_smooth=args.w_smooth, w_emb=args.w_emb, ckpt_minutes=args.ckpt_minutes,
                      threads=args.threads, seed=args.seed, audio_cache=args.audio_cache,
                      notes_file=args.notes_file, stft_ffts=args.stft_ffts, w_lin_mag=args.w_lin_mag,
                      init_codec=args.init_codec, freeze_encoder=args.freeze_encoder, onset_prob=args.onset_prob,
                      w_mel=args.w_mel, mel_fft=args.mel_fft, mel_bins=args.mel_bins, w_band=args.w_band,
                      band_fft=args.band_fft, band_bins=args.band_bins, band_pool=args.band_pool, w_env=args.w_env,
                      env_window=args.env_window, harm_prior=args.harm_prior)
    if args.harm_prior is not None:
        from synth.validate import InputError, finite_in_range

        try:
            finite_in_range(args.harm_prior, 0.0, 4.0, "--harm-prior (the exponent p of a 1/k^p prior)")
        except InputError as exc:
            print(f"synth codec train: {exc}")
            return 2
    if args.freeze_encoder and not args.init_codec:
        print("synth codec train: --freeze-encoder needs --init-codec (a trained codec folder whose encoder to keep)")
        return 2
    default_name = "" if args.init_codec else f"bundled-{args.arch}"  # a fine-tune keeps its folder's name
    codec_cfg = CodecConfig(arch=args.arch, name=args.name or default_name, dim=args.dim,
                            enc_filters=args.enc_filters, enc_lstm=args.enc_lstm,
                            pitch_feature=args.pitch_feature, emb_tanh=args.emb_tanh, emb_norm=args.emb_norm,
                            pitch_feature_dims=args.pitch_feature_dims, hidden=args.hidden,
                            n_blocks=args.n_blocks, n_harmonics=args.n_harmonics, n_noise_bands=args.n_noise_bands,
                            dec_filters=args.dec_filters, dec_lstm=args.dec_lstm,
                            loudness_feature=args.loudness_feature, fine_env=args.fine_env, onset_fill=args.onset_fill,
                            emb_norm_eps=args.emb_norm_eps,
                            noise_init_db=args.noise_init_db, yin_win=args.yin_win, yin_fmin=args.yin_fmin,
                            yin_fmax=args.yin_fmax,
                            harm_prior=2.0 if args.harm_prior is None else args.harm_prior)
    if not args.minutes and not args.steps:
        print("synth codec train: give --minutes and/or --steps")
        return 2
    import torch

    from synth import distributed

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here")
        return 2
    with distributed.session(args.device) as dd:  # torchrun: one process per GPU (nccl) or CPU share (gloo)
        summary = train(cfg, codec_cfg, args.out, fresh=args.fresh, export=args.export, progress=not args.no_progress,
                        device=dd.device)
    if dd.is_main():
        print(json.dumps(summary))
    return 0
