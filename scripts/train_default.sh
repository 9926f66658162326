#!/usr/bin/env bash
# The whole training pipeline of the bundled model, step by step. Every step is resumable: run the script again
# after an interruption and finished steps are skipped (dataset and caches are incremental, training runs resume
# from their checkpoints and count their time budget across resumes). The options of every step live in
# recipes/default.json (one section per step); budgets are sized for a 2-core CPU: on a GPU set MINUTES_CODEC,
# MINUTES_CODEC_DECODER(_2), EPOCHS_VAE, MINUTES_FLOW(_2), MINUTES_GEN to override them (every training command also
# takes --device cuda, and torchrun for several GPUs: README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
R=recipes/default.json  # every option of every step; the budgets below override it only when set
opt() { if [ -n "${2:-}" ]; then printf -- '%s %s' "$1" "$2"; fi; }  # "--minutes 60" if MINUTES_X is set, else nothing
FROM_STEP=${FROM_STEP:-1}  # run only steps FROM_STEP..TO_STEP (each is resumable anyway; this saves their checks)
TO_STEP=${TO_STEP:-7}
step() { [ "$1" -ge "$FROM_STEP" ] && [ "$1" -le "$TO_STEP" ]; }

# 1. notes from the Debian GM SoundFonts, NSynth layout, pitch-gated, instrument-disjoint splits (~10 min here)
step 1 && $PY -m synth dataset build --recipe $R:dataset_build
# 2. the bundled harmonic-plus-noise codec v6 (CODEC_CARD.md says why each option), then two rounds of its decoder
#    trained on behind the frozen v6 encoder: v6.1, and v6.3 (a band-energy loss) exported to models/default/codec.
#    The embedding is v6's throughout.
step 2 && $PY -m synth codec train --recipe $R:codec_train $(opt --minutes "${MINUTES_CODEC:-}")
step 2 && $PY -m synth codec train --recipe $R:codec_decoder $(opt --minutes "${MINUTES_CODEC_DECODER:-}")
step 2 && $PY -m synth codec train --recipe $R:codec_decoder_2 $(opt --minutes "${MINUTES_CODEC_DECODER_2:-}")
# 3. embedding cache (fp16 memmaps + train statistics); two shards in parallel on two cores
step 3 && $PY -m synth codec encode --recipe $R:codec_encode --shard 0/2 &
step 3 && $PY -m synth codec encode --recipe $R:codec_encode --shard 1/2
step 3 && wait
# 4. stage 1: the timbre VAE (the encoder sees neither pitch nor velocity: the map is timbre only)
step 4 && $PY -m synth train vae --recipe $R:train_vae $(opt --epochs "${EPOCHS_VAE:-}")
# 5. stage 2, two generators side by side (VAE frozen), one core each: the flow-matching sampler that plays
#    (synth/model/flow.py; 30 minutes, then trained on from those weights on a longer schedule) and the MSE generator
#    (baseline and fallback)
step 5 && { $PY -m synth train flow --recipe $R:train_flow $(opt --minutes "${MINUTES_FLOW:-}") && \
            $PY -m synth train flow --recipe $R:train_flow_2 $(opt --minutes "${MINUTES_FLOW_2:-}"); } &
step 5 && $PY -m synth train generator --recipe $R:train_generator $(opt --minutes "${MINUTES_GEN:-}")
step 5 && wait
# 6. the bundle the app loads (the flow sampler plays; the card says why, with numbers)
step 6 && $PY -m synth bundle build --recipe $R:bundle_build
#    the codec plays with onset fill (a decoding rule the v6.3 decoder was not trained with; CODEC_CARD.md)
step 6 && $PY -m synth bundle codec --recipe $R:bundle_codec
# 7. the numbers for the cards
step 7 && $PY -m synth codec eval --codec models/default/codec --data data/notes --split test --max-notes 200 --threads 1 --json
step 7 && $PY -m synth eval latent --vae runs/vae/default --emb data/emb/default --split test --json
step 7 && $PY -m synth eval generate --split test --guidance 1,2,3 --json
step 7 && $PY -m synth bench generate --json
true
