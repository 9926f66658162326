#!/usr/bin/env bash
# The whole training pipeline of the bundled model, step by step. Every step is resumable: run the script again
# after an interruption and finished steps are skipped (dataset and caches are incremental, training runs resume
# from their checkpoints and count their time budget across resumes). Budgets are sized for a 2-core CPU; on a GPU
# raise MINUTES_* (the generator scales by config: --set d_model=... --set layers=...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
MINUTES_CODEC=${MINUTES_CODEC:-60}
EPOCHS_VAE=${EPOCHS_VAE:-25}  # ~1000 steps of batch 512 on the wide dataset (round 2: 40 epochs, 600 steps)
MINUTES_GEN=${MINUTES_GEN:-22}
STEPS_GEN=${STEPS_GEN:-450}  # length of the generator's cosine schedule: what MINUTES_GEN buys on 1 CPU thread
MINUTES_FLOW=${MINUTES_FLOW:-30}
STEPS_FLOW=${STEPS_FLOW:-5200}  # the flow's cosine schedule (~0.42 s a step, batch 64, 1 thread, beside the generator: ~4300 fit in 30 min)
FROM_STEP=${FROM_STEP:-1}  # run only steps FROM_STEP..TO_STEP (each is resumable anyway; this saves their checks)
TO_STEP=${TO_STEP:-7}
step() { [ "$1" -ge "$FROM_STEP" ] && [ "$1" -le "$TO_STEP" ]; }

# 1. notes from the Debian GM SoundFonts, NSynth layout, pitch-gated, instrument-disjoint splits. --wide: each
#    instrument keeps its MIDI 48-72 velocity-100 core and samples MIDI 21-108 and velocity layers 40/70/127
#    (synth.data.build.WideGrid; ~25 min here)
step 1 && $PY -m synth dataset build --root data/notes --wide
# 2. the bundled harmonic-plus-noise codec v6 (see models/default/CODEC_CARD.md for the flags and why): a loudness
#    channel that drives the amplitude (true silence), noise bands that start audible, sub-frame envelopes for
#    attacks, YIN over the whole keyboard, a spectral loss with linear magnitudes and 2.7 ms windows. No smoothness
#    penalty: with the level in its own channel an averaged code no longer decodes quiet, and v5a's --w-smooth
#    (0.5 here) collapsed the learned dims within 500 steps (the decoder got by on loudness + pitch; CODEC_CARD).
#    --emb-norm-eps 1e-12: with BatchNorm's default 1e-5 the learned dims drifted below epsilon and shrank.
step 2 && $PY -m synth codec train --data data/notes --out runs/codec/v6 --arch harmonic --pitch-feature \
    --pitch-feature-dims 1 --emb-norm --emb-norm-eps 1e-12 --w-emb 0 --w-smooth 0 --emb-noise 0.1 --loudness-feature \
    --fine-env 8 \
    --noise-init-db -25 --yin-win 2048 --yin-fmin 25 --yin-fmax 4500 --n-harmonics 160 --n-blocks 6 \
    --stft-ffts 2048,512,128,64 --w-lin-mag 1 --minutes "$MINUTES_CODEC" --ckpt-minutes 3 --threads 1 \
    --name default-harmonic-v6 --export models/default/codec
# 3. embedding cache (fp16 memmaps + train statistics); two shards in parallel on two cores
step 3 && $PY -m synth codec encode --codec models/default/codec --data data/notes --out data/emb/default --shard 0/2 --threads 1 &
step 3 && $PY -m synth codec encode --codec models/default/codec --data data/notes --out data/emb/default --shard 1/2 --threads 1
step 3 && wait
# 4. stage 1: timbre VAE over the whole keyboard, its decoder conditioned on the velocity layer (the encoder sees
#    neither pitch nor velocity: the map is timbre only). enc_skip_dims=1 hides the YIN pitch dim (the last) from
#    the encoder; it still sees v6's loudness dim (the envelope is part of the timbre).
step 4 && $PY -m synth train vae --emb data/emb/default --out runs/vae/default --epochs "$EPOCHS_VAE" --threads 1 \
    --set enc_skip_dims=1 --set pitch_min=21 --set pitch_max=108 --set velocity_cond=true
# 5. stage 2, two generators side by side (VAE frozen), one core each:
#    a. the flow-matching sampler (synth/model/flow.py; issue "Sound, part 2"), conditioned on each instrument's
#       point, the pitch and the velocity layer, with condition dropout for classifier-free guidance;
#    b. the MSE generator (the baseline and fallback): it refines the VAE decoder's frames (refine_vae), is
#       conditioned on each instrument's point as it is played (instrument_point), and learns from teacher forcing
#       plus free-running rollouts (tf_weight, rollout_weight); pitch range and velocity come from the VAE.
step 5 && $PY -m synth train flow --emb data/emb/default --vae runs/vae/default --out runs/flow/default \
    --minutes "$MINUTES_FLOW" --threads 1 --valid-every 500 --set total_steps="$STEPS_FLOW" --set warmup_steps=300 &
step 5 && $PY -m synth train generator --emb data/emb/default --vae runs/vae/default --out runs/gen/default \
    --minutes "$MINUTES_GEN" --threads 1 --valid-every 100 --set total_steps="$STEPS_GEN" --set warmup_steps=50 \
    --set input_noise=0.2 --set refine_vae=true --set instrument_point=true --set batch_size=32 \
    --set tf_weight=1 --set rollout_weight=1 --set rollout_batch=16
step 5 && wait
# 6. the bundle the app loads (the flow sampler plays; the card says why, with numbers)
step 6 && $PY -m synth bundle build --codec models/default/codec --vae runs/vae/default --gen runs/gen/default \
    --flow runs/flow/default --play-path flow --half-weights --emb data/emb/default --out models/default
# 7. the numbers for the cards
step 7 && $PY -m synth codec eval --codec models/default/codec --data data/notes --split test --max-notes 200 --threads 1 --json
step 7 && $PY -m synth eval latent --vae runs/vae/default --emb data/emb/default --split test --json
step 7 && $PY -m synth eval generate --split test --guidance 1,2,3 --json
step 7 && $PY -m synth bench generate --json
true
