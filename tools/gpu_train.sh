#!/usr/bin/env bash
# One training run on a CUDA machine with JAX (no TensorFlow, no
# keras, no network), time-boxed to BUDGET_S seconds in all, from the
# repository root with gpu_payload/ (tools/gpu_payload.sh) beside the code:
#
#   OUT=/results bash tools/gpu_train.sh
#
# 1. installs the payload's wheels (keras, namex, optree, safetensors) into $SITE (/tmp/site);
# 2. prints Python, JAX and keras versions and the devices, and stops at once
#    unless JAX sees a GPU (ALLOW_CPU=1 for the CPU rehearsal);
# 0. continues the shipped release pretrained/efanet (train.py --init_from: its
#    weights, step and history, Adam fresh with its warm-up), which travels with
#    the tree; FRESH=1 trains from scratch;
# 3. smoke: train.py with configs/gpu_jax.cfg for 2 steps (the same entry
#    point, network, data, VGG file, image grid and saving); stops at once if
#    it fails. Its compiled functions go to JAX's persistent cache, so the run
#    after it does not compile them again;
# 4. trains with configs/gpu_jax.cfg and --max_seconds, so that train.py saves
#    and exits on its own before POST_S seconds are left (saves every 2 min
#    too; `timeout` sends SIGTERM, which also saves, if it overruns);
# 5. tools.make_release: the quantisation error of the release format on 4
#    evaluation pairs, then the release (shards + manifest) and a sample grid
#    (retried with a one-pair check if it fails or runs out of time);
# 6. tools.plot_training: the loss curve;
# 7. if a minute is left, bench.inference: stylization time of efanet, AdaIN
#    and the bare VGG at 256/512/1024 px next to the paper's Table 2 (float32,
#    and bfloat16 with two minutes), into the log.
# $OUT then holds at most 8 files, each < 16 MiB, at most 1 folder deep:
#   efanet/manifest.json, efanet/efanet-0000K-of-0000N.safetensors (N = 3 at ~34M
#   parameters), train_log.csv, loss.png, samples.png, log.txt
# The VGG file is not returned: the manifest names it and its sha256, and it
# is ../shared/weights/vgg19_to_relu4_1_float16.h5 (the payload's or the release's copy).
# While training, train_log.csv and the newest training grid are copied to
# $OUT every 30 s, so a run killed from outside still returns its curve.
#
# Environment: OUT (required), BUDGET_S (550), POST_S (120), HARD_LIMIT_S (600,
# the command's own limit: a failed conversion is retried inside it), PYTHON (python3),
# PAYLOAD (gpu_payload), RUN_DIR (/tmp/gpu_jax_run), EXTRA_FLAGS (appended to
# the training flags; the CPU rehearsal shrinks the run with them),
# RELEASE_FLAGS, TIMING_FLAGS (appended to tools.make_release's and
# bench.inference's, e.g. --size=128, --sizes=64),
# SITE (/tmp/site), SMOKE_TIMEOUT_S (240), JAX_COMPILATION_CACHE_DIR
# (/tmp/jax_cache), SKIP_WHEELS=1 (keras already installed), ALLOW_CPU=1,
# INIT_FROM (pretrained/efanet), FRESH=1 (do not continue it).
set -uo pipefail
T0=$(date +%s)
: "${OUT:?set OUT to the folder for the results}"
BUDGET_S=${BUDGET_S:-550}
POST_S=${POST_S:-120}
HARD_LIMIT_S=${HARD_LIMIT_S:-600}
PYTHON=${PYTHON:-python3}
PAYLOAD=${PAYLOAD:-gpu_payload}
RUN_DIR=${RUN_DIR:-/tmp/gpu_jax_run}
SITE=${SITE:-/tmp/site}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
RELEASE_FLAGS=${RELEASE_FLAGS:-}
TIMING_FLAGS=${TIMING_FLAGS:-}
SMOKE_TIMEOUT_S=${SMOKE_TIMEOUT_S:-240}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
. tools/gpu_env.sh

stage "wheels"
install_wheels || exit 1

stage "versions and devices"
check_devices || exit 1

CONTINUE=$(continue_flags)
START_STEP=0
if [[ -n "$CONTINUE" ]]; then
    START_STEP=$(release_step "$INIT_FROM")
    stage "continuing $INIT_FROM from step $START_STEP (FRESH=1 would start from scratch)"
else
    stage "training from scratch"
fi

stage "smoke: train.py, the same configuration, 2 steps"
rm -rf "$RUN_DIR.smoke"
# shellcheck disable=SC2086  # flag words
timeout -k 10 "$SMOKE_TIMEOUT_S" "$PYTHON" train.py --flagfile=configs/gpu_jax.cfg $VGG_FLAG \
    $CONTINUE $EXTRA_FLAGS --model_dir="$RUN_DIR.smoke" --steps=$((START_STEP + 2)) --log_every=1 \
    --image_every=2 --eval_every=1000000000 \
    || { stage "smoke FAILED: stopping"; exit 1; }
rm -rf "$RUN_DIR.smoke"

# Copies the curve and the newest grid while training, for a run killed from outside.
(
    while sleep 30; do
        cp "$RUN_DIR/train_log.csv" "$OUT/" 2>/dev/null
        grid=$(ls "$RUN_DIR"/images/step-*.png 2>/dev/null | tail -1)
        [[ -n "$grid" ]] && cp "$grid" "$OUT/samples.png"
    done
) &
WATCHER=$!
trap 'kill "$WATCHER" 2>/dev/null' EXIT

MAX_S=$((BUDGET_S - $(elapsed) - POST_S))
stage "training for at most $MAX_S s (train.py's --max_seconds; then $POST_S s are left)"
# shellcheck disable=SC2086  # flag words
timeout -k 20 $((MAX_S + 30)) "$PYTHON" train.py --flagfile=configs/gpu_jax.cfg $VGG_FLAG \
    $CONTINUE --model_dir="$RUN_DIR" --max_seconds="$MAX_S" $EXTRA_FLAGS
status=$?
kill "$WATCHER" 2>/dev/null
stage "train.py exited with $status"
if [[ ! -f "$RUN_DIR/latest.weights.h5" ]]; then
    stage "no weights were saved: stopping"
    exit 1
fi
cp "$RUN_DIR/train_log.csv" "$OUT/"
grep -E "steps/s" "$OUT/log.txt" | tail -3

stage "release: quantisation error, shards, sample grid"
write_machine_facts "$RUN_DIR/machine.json" "$(elapsed)" tools/gpu_train.sh
rm -rf "$OUT/efanet"
timeout -k 10 $((POST_S - 15)) "$PYTHON" -m tools.make_release --checkpoint_dir="$RUN_DIR" \
    --content="$PAYLOAD/eval/content" --style="$PAYLOAD/eval/style" --pairs=4 --size=512 \
    --vgg_file="$VGG_FILE" --nocopy_vgg \
    --provenance="$RUN_DIR/machine.json" --output_dir="$OUT/efanet" --grid="$OUT/samples.png" \
    $RELEASE_FLAGS
release_status=$?
if [[ ! -f "$OUT/efanet/manifest.json" ]]; then
    # The release is what the run is for: convert with one quick check instead.
    left=$((HARD_LIMIT_S - 15 - $(elapsed)))
    stage "release FAILED ($release_status): converting with one pair at 256 px ($left s)"
    rm -rf "$OUT/efanet"
    timeout -k 5 "$left" "$PYTHON" -m tools.make_release --checkpoint_dir="$RUN_DIR" \
        --content="$PAYLOAD/eval/content" --style="$PAYLOAD/eval/style" --pairs=1 --size=256 \
        --int8_min_params=1000000 --vgg_file="$VGG_FILE" \
        --nocopy_vgg --provenance="$RUN_DIR/machine.json" --output_dir="$OUT/efanet"
    release_status=$?
fi
# At most 8 files come back: the model card is rewritten from the manifest here
# (release.add_provenance when its check is recorded).
rm -f "$OUT/efanet/README.md"

stage "loss curve"
timeout 60 "$PYTHON" -m tools.plot_training --csv="$OUT/train_log.csv" --output="$OUT/loss.png"

# Stylization time next to the paper's Table 2, with what is left (into log.txt).
left=$((BUDGET_S - $(elapsed)))
if ((left >= 60)); then
    precisions=none
    ((left >= 120)) && precisions="none mixed_bfloat16"
    stage "timing (${precisions// /, }; $left s left)"
    # Speed does not depend on the weights: bench.inference times random ones.
    for precision in $precisions; do
        timeout -k 5 $(((left - 10) / $(wc -w <<<"$precisions"))) "$PYTHON" -m bench.inference \
            --sizes=256,512,1024 --mixed_precision="$precision" --savedmodel_max_size=0 \
            --eager_max_size=0 --group_size=0 --budget_s=10 \
            --output="$RUN_DIR/inference_$precision.json" $TIMING_FLAGS
    done
fi

stage "results in $OUT (at most 8 files of < 16 MiB come back)"
find "$OUT" -type f -printf "%s\t%P\n" | sort -k2
count=$(find "$OUT" -type f | wc -l)
big=$(find "$OUT" -type f -size +16777215c | wc -l)
[[ $count -le 8 && $big -eq 0 ]] || echo "WARNING: $count files, $big over 16 MiB: some will not come back"
stage "done (release exit status $release_status)"
exit $release_status
