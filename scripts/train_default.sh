#!/usr/bin/env bash
# The whole training pipeline of the bundled model, step by step. Every step is resumable: run the script again
# after an interruption and finished steps are skipped (dataset and caches are incremental, training runs resume
# from their checkpoints and count their time budget across resumes). The options of every step live in
# recipes/default.json (one section per step); budgets are sized for a 2-core CPU: on a GPU set MINUTES_CODEC,
# MINUTES_CODEC_DECODER(_2), MINUTES_CODEC_JOINT, MINUTES_CODEC_DECODER_3, EPOCHS_VAE, MINUTES_FLOW(_2),
# MINUTES_FLOW_V7(_2), MINUTES_GEN to override them (every training command also takes --device cuda, and torchrun
# for several GPUs: README). About 11 hours on this project's 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
R=recipes/default.json  # every option of every step; the budgets below override it only when set
opt() { if [ -n "${2:-}" ]; then printf -- '%s %s' "$1" "$2"; fi; }  # "--minutes 60" if MINUTES_X is set, else nothing
FROM_STEP=${FROM_STEP:-1}  # run only steps FROM_STEP..TO_STEP (each is resumable anyway; this saves their checks)
TO_STEP=${TO_STEP:-10}
step() { [ "$1" -ge "$FROM_STEP" ] && [ "$1" -le "$TO_STEP" ]; }

# 1. notes from the Debian GM SoundFonts, NSynth layout, pitch-gated, instrument-disjoint splits (~10 min here)
step 1 && $PY -m synth dataset build --recipe $R:dataset_build
# 2. the harmonic-plus-noise codec (CODEC_CARD.md says why each option): v6, its decoder trained on behind the frozen
#    v6 encoder (v6.1, v6.3), then v6.3 trained on with its encoder (v7b: a new embedding), and v7b's decoder trained
#    on behind v7b's frozen encoder (v7d, exported to models/default/codec). The shipped embedding is v7b's.
step 2 && $PY -m synth codec train --recipe $R:codec_train $(opt --minutes "${MINUTES_CODEC:-}")
step 2 && $PY -m synth codec train --recipe $R:codec_decoder $(opt --minutes "${MINUTES_CODEC_DECODER:-}")
step 2 && $PY -m synth codec train --recipe $R:codec_decoder_2 $(opt --minutes "${MINUTES_CODEC_DECODER_2:-}")
step 2 && $PY -m synth codec train --recipe $R:codec_joint $(opt --minutes "${MINUTES_CODEC_JOINT:-}")
step 2 && $PY -m synth codec train --recipe $R:codec_decoder_3 $(opt --minutes "${MINUTES_CODEC_DECODER_3:-}")
# 3-5. the v6 stack, whose sampler seeds the shipped one: the v6 cache, its timbre VAE (the encoder sees neither
#    pitch nor velocity: the map is timbre only), and the flow-matching sampler (synth/model/flow.py; 30 minutes,
#    then trained on from those weights on a longer schedule)
step 3 && $PY -m synth codec encode --recipe $R:codec_encode --shard 0/2 &  # fp16 memmaps, two shards on two cores
step 3 && $PY -m synth codec encode --recipe $R:codec_encode --shard 1/2
step 3 && wait
step 4 && $PY -m synth train vae --recipe $R:train_vae $(opt --epochs "${EPOCHS_VAE:-}")
step 5 && $PY -m synth train flow --recipe $R:train_flow $(opt --minutes "${MINUTES_FLOW:-}")
step 5 && $PY -m synth train flow --recipe $R:train_flow_2 $(opt --minutes "${MINUTES_FLOW_2:-}")
# 6. the v7 cache (v7b's encoder): what the shipped VAE and generators read
step 6 && $PY -m synth codec encode --recipe $R:codec_encode_v7 --shard 0/2 &
step 6 && $PY -m synth codec encode --recipe $R:codec_encode_v7 --shard 1/2
step 6 && wait
# 7. two timbre VAEs on it, side by side: seed 0 (the map the first v7 sampler learned) and seed 1 (shipped: seed 0's
#    decoder came out velocity-blind; train vae now checks that and warns, MODEL_CARD.md)
step 7 && $PY -m synth train vae --recipe $R:train_vae_v7 $(opt --epochs "${EPOCHS_VAE:-}") &
step 7 && $PY -m synth train vae --recipe $R:train_vae_v7_seed1 $(opt --epochs "${EPOCHS_VAE:-}")
step 7 && wait
# 8. stage 2, two generators side by side (VAE frozen), one core each: the sampler that plays (the v6 sampler trained
#    on, --init, on the v7 cache and seed 0's map, then on seed 1's map) and the MSE generator (baseline and fallback)
step 8 && { $PY -m synth train flow --recipe $R:train_flow_v7 $(opt --minutes "${MINUTES_FLOW_V7:-}") && \
            $PY -m synth train flow --recipe $R:train_flow_v7s1b $(opt --minutes "${MINUTES_FLOW_V7_2:-}"); } &
step 8 && $PY -m synth train generator --recipe $R:train_generator $(opt --minutes "${MINUTES_GEN:-}")
step 8 && wait
# 9. the bundle the app loads (the flow sampler plays; the card says why, with numbers)
step 9 && $PY -m synth bundle build --recipe $R:bundle_build
#    the codec plays with onset fill (a decoding rule its decoder was not trained with; CODEC_CARD.md)
step 9 && $PY -m synth bundle codec --recipe $R:bundle_codec
# 10. the numbers for the cards
step 10 && $PY -m synth codec eval --codec models/default/codec --data data/notes --split test --max-notes 200 --threads 1 --json
step 10 && $PY -m synth eval latent --vae runs/vae/v7seed1 --emb data/emb/v7 --split test --json
step 10 && $PY -m synth eval generate --emb data/emb/v7 --split test --guidance 1,2,3 --json
step 10 && $PY -m synth eval velocity --emb data/emb/v7 --max-cells 0 --models flow,generator --json
step 10 && $PY -m synth bench generate --json
true
