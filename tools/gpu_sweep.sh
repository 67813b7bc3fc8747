#!/usr/bin/env bash
# One command on a CUDA machine with JAX: K <= 4 variants (train.py flag sets,
# configs/sweep.txt) trained side by side on one GPU for the same wall time, evaluated alike, and
# the best EFANet that stylizes released (docs/gpu.md). From the repository root
# with gpu_payload/ (tools/gpu_payload.sh) carried:
#
#   OUT=/results bash tools/gpu_sweep.sh
#
# THE RULE (tools/sweep_summary.py, fixed before any run): an EFANet variant
# qualifies when v_r_s's spread across 20 styles is >= 5% of its RMS, mean
# |out(la_muse) - out(sketch)| at 512 px is >= 0.06 and its outputs' luminance
# correlates >= 0.2 with the content; the qualifying variant with the lowest
# Table 1 total on the 4 evaluation pairs is released. AdaIN's weights come
# back when AdaIN passes the last two checks.
#
# 1. wheels and devices (tools/gpu_env.sh), as tools/gpu_train.sh;
# 2. smoke: every variant's train.py for 2 steps, side by side; a variant that
#    fails is reported and left out, the others go on (all fail: stop). The
#    compiled steps go to JAX's cache, which the training runs read;
# 3. training: every variant at once, each its own process with 1/K of the
#    GPU's memory (XLA_PYTHON_CLIENT_MEM_FRACTION) and 1/K of the data-loader
#    threads, `--max_seconds` the same for all; a variant that dies or is
#    killed stops no other. Every 30 s, summary.md and sweep.tar.gz in $OUT
#    are rewritten from what the runs logged, so a command killed at its limit
#    still returns every curve;
# 4. evaluation (tools.sweep_eval, side by side): the content x style grid at
#    512 px, Table 1 on the 4 pairs, the style move, the content correlation,
#    the style-dependence report over 20 styles at 256 px, FLOPs per step;
# 5. summary (tools.sweep_summary): the table with steps/s, TFLOP/s, MFU, the
#    losses, Table 1, the v_r_s spread and each verdict of the rule;
# 6. release: tools.make_release of the chosen EFANet into $OUT/efanet (int8;
#    manifest + shards, the VGG named, not copied) and, if AdaIN passes, of
#    AdaIN (every kernel float16) packed as $OUT/adain.tar.
# $OUT then holds at most 8 files, each < 16 MiB: summary.md, sweep.tar.gz,
# log.txt, adain.tar, efanet/manifest.json and three shards.
# A second call on the same warm machine resumes every variant from RUN_ROOT.
#
# Environment: OUT (required), SWEEP (configs/sweep.txt: one `name flags...`
# per line, a whole flag set for train.py; the sweep adds --model_dir,
# --max_seconds and --data_workers), BUDGET_S (560),
# POST_S (170: evaluation, summary, releases), HARD_LIMIT_S (600), PYTHON
# (python3), PAYLOAD (gpu_payload), RUN_ROOT (/tmp/gpu_sweep), SITE (/tmp/site),
# EXTRA_FLAGS (appended to every variant; the CPU rehearsal shrinks the runs),
# EVAL_FLAGS, RELEASE_FLAGS (appended to tools.sweep_eval's, tools.make_release's),
# SMOKE_TIMEOUT_S (240), DATA_WORKERS (14: split over the variants),
# KILL_AFTER ("name:seconds", rehearsal only: SIGKILLs that variant's training
# that long after it starts), REHEARSAL=1 (CPU rehearsal only: the rule is off, so
# that the release path runs on a few steps' weights), SKIP_WHEELS=1, ALLOW_CPU=1,
# INIT_FROM (pretrained/efanet: the release the efanet variant continues), FRESH=1.
set -uo pipefail
T0=$(date +%s)
: "${OUT:?set OUT to the folder for the results}"
SWEEP=${SWEEP:-configs/sweep.txt}
BUDGET_S=${BUDGET_S:-560}
POST_S=${POST_S:-170}
HARD_LIMIT_S=${HARD_LIMIT_S:-600}
PYTHON=${PYTHON:-python3}
PAYLOAD=${PAYLOAD:-gpu_payload}
RUN_ROOT=${RUN_ROOT:-/tmp/gpu_sweep}
SITE=${SITE:-/tmp/site}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
EVAL_FLAGS=${EVAL_FLAGS:-}
RELEASE_FLAGS=${RELEASE_FLAGS:-}
SMOKE_TIMEOUT_S=${SMOKE_TIMEOUT_S:-240}
DATA_WORKERS=${DATA_WORKERS:-14}
KILL_AFTER=${KILL_AFTER:-}
cd "$(dirname "$0")/.."
mkdir -p "$OUT" "$RUN_ROOT"
exec > >(tee -a "$OUT/log.txt") 2>&1
. tools/gpu_env.sh

summarize() {
    local rehearsal=()
    [[ "${REHEARSAL:-0}" == 1 ]] && rehearsal=(--rehearsal)
    timeout 120 "$PYTHON" -m tools.sweep_summary --variants="$SWEEP" --run_root="$RUN_ROOT" \
        --output_dir="$OUT" "${rehearsal[@]}" "$@"
}

stage "wheels"
install_wheels || exit 1
stage "versions and devices"
check_devices || exit 1

NAMES=()
declare -A FLAGS_OF
while read -r name rest; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    NAMES+=("$name")
    FLAGS_OF[$name]="${rest%%#*}"
done <"$SWEEP"
K=${#NAMES[@]}
if ((K < 1 || K > 4)); then
    stage "$SWEEP lists $K variants: 1 to 4 share the GPU"
    exit 1
fi
export XLA_PYTHON_CLIENT_MEM_FRACTION
XLA_PYTHON_CLIENT_MEM_FRACTION=$(awk -v k="$K" 'BEGIN { printf "%.2f", 0.9 / k }')
WORKERS=$((DATA_WORKERS / K > 1 ? DATA_WORKERS / K : 1))
stage "$K variants (${NAMES[*]}), each with $XLA_PYTHON_CLIENT_MEM_FRACTION of the GPU's memory and $WORKERS loader threads"

# The efanet variant continues the shipped release (its weights, step and history;
# FRESH=1: from scratch); the others train from scratch beside it.
CONTINUE=$(continue_flags)
START_STEP=0
if [[ -n "$CONTINUE" ]]; then
    START_STEP=$(release_step "$INIT_FROM")
    stage "efanet continues $INIT_FROM from step $START_STEP"
fi
flags_of() {  # name: the variant's flags, with the continuation for efanet
    if [[ "$1" == efanet ]]; then echo "${FLAGS_OF[$1]} $CONTINUE"; else echo "${FLAGS_OF[$1]}"; fi
}
start_of() { if [[ "$1" == efanet ]]; then echo "$START_STEP"; else echo 0; fi; }

run_train() {  # limit_s name model_dir flags...: the variant's train.py under `timeout`
    local limit=$1 name=$2 dir=$3
    shift 3
    # shellcheck disable=SC2046,SC2086  # the variant's flags are words
    timeout -k 20 "$limit" "$PYTHON" train.py $(flags_of "$name") $VGG_FLAG $EXTRA_FLAGS \
        --data_workers="$WORKERS" --model_dir="$dir" "$@"
}

stage "smoke: every variant for 2 steps, side by side"
declare -A PID
for name in "${NAMES[@]}"; do
    # A resumed sweep's evaluations of the last call describe older weights.
    rm -rf "$RUN_ROOT/$name.smoke" "$RUN_ROOT/$name.eval.json" "$RUN_ROOT/$name.grid.jpg"
    run_train "$SMOKE_TIMEOUT_S" "$name" "$RUN_ROOT/$name.smoke" \
        --steps=$(($(start_of "$name") + 2)) --log_every=1 --image_every=2 \
        >"$RUN_ROOT/$name.smoke.log" 2>&1 &
    PID[$name]=$!
done
LIVE=()
for name in "${NAMES[@]}"; do
    if wait "${PID[$name]}"; then
        LIVE+=("$name")
        echo "smoke ok" >"$RUN_ROOT/$name.status"
        # FLOPs per training step from the smoke run's config, for the MFU while
        # training: on the CPU, beside the training runs.
        (JAX_PLATFORMS=cpu timeout 120 "$PYTHON" -m tools.sweep_eval --flops_only \
            --run_dir="$RUN_ROOT/$name.smoke" --content=- --style=- \
            --output="$RUN_ROOT/$name.flops.json" >/dev/null 2>&1
        rm -rf "$RUN_ROOT/$name.smoke") &
    else
        echo "failed at start (smoke exit $?)" >"$RUN_ROOT/$name.status"
        stage "$name: smoke FAILED; its last lines:"
        tail -5 "$RUN_ROOT/$name.smoke.log"
        rm -rf "$RUN_ROOT/$name.smoke"
    fi
done
if ((${#LIVE[@]} == 0)); then
    stage "every variant failed its smoke: stopping"
    summarize --partial
    exit 1
fi

MAX_S=$((BUDGET_S - $(elapsed) - POST_S))
stage "training ${LIVE[*]} side by side for at most $MAX_S s each (then $POST_S s are left)"
for name in "${LIVE[@]}"; do
    run_train $((MAX_S + 30)) "$name" "$RUN_ROOT/$name" --max_seconds="$MAX_S" \
        >>"$RUN_ROOT/$name.log" 2>&1 &
    PID[$name]=$!
done
if [[ -n "$KILL_AFTER" ]]; then
    (sleep "${KILL_AFTER#*:}" && pkill -9 -f "model_dir=$RUN_ROOT/${KILL_AFTER%%:*}( |$)" &&
        echo "=== rehearsal: killed ${KILL_AFTER%%:*}") &
fi
(while sleep 30; do summarize --partial >/dev/null 2>&1; done) &
WATCHER=$!
trap 'kill "$WATCHER" 2>/dev/null' EXIT
for name in "${LIVE[@]}"; do
    wait "${PID[$name]}"
    status=$?
    echo "trained (train.py exit $status)" >"$RUN_ROOT/$name.status"
    stage "$name: train.py exited with $status"
    grep -E "steps/s" "$RUN_ROOT/$name.log" | tail -1
done
kill "$WATCHER" 2>/dev/null

stage "evaluation: grids at 512 px, Table 1, style dependence"
EVAL_S=$((HARD_LIMIT_S - $(elapsed) - 110))
for name in "${LIVE[@]}"; do
    if [[ ! -f "$RUN_ROOT/$name/latest.weights.h5" ]]; then
        echo "no checkpoint saved" >"$RUN_ROOT/$name.status"
        continue
    fi
    rm -f "$RUN_ROOT/$name.eval.json"
    timeout -k 5 "$EVAL_S" "$PYTHON" -m tools.sweep_eval --run_dir="$RUN_ROOT/$name" \
        --content="$PAYLOAD/eval/content" --style="$PAYLOAD/eval/style" \
        --dependence_styles="$PAYLOAD/eval/styles256" --output="$RUN_ROOT/$name.eval.json" \
        --grid="$RUN_ROOT/$name.grid.jpg" $EVAL_FLAGS >"$RUN_ROOT/$name.eval.log" 2>&1 &
    PID[$name]=$!
done
for name in "${LIVE[@]}"; do
    [[ -f "$RUN_ROOT/$name/latest.weights.h5" ]] || continue
    wait "${PID[$name]}" || { stage "$name: evaluation FAILED:"; tail -3 "$RUN_ROOT/$name.eval.log"; }
done

stage "summary and the rule"
cp "$OUT/log.txt" "$RUN_ROOT/sweep.log" 2>/dev/null
summarize
CHOICE_EFANET=$("$PYTHON" -c "import json; print(json.load(open('$RUN_ROOT/choice.json'))['efanet'] or '')" 2>/dev/null)
CHOICE_ADAIN=$("$PYTHON" -c "import json; print(json.load(open('$RUN_ROOT/choice.json'))['adain'] or '')" 2>/dev/null)

release_status=0
if [[ -n "$CHOICE_EFANET" ]]; then
    stage "release: $CHOICE_EFANET"
    write_machine_facts "$RUN_ROOT/machine.json" "$(elapsed)" tools/gpu_sweep.sh
    rm -rf "$OUT/efanet"
    timeout -k 5 $((HARD_LIMIT_S - $(elapsed) - 40)) "$PYTHON" -m tools.make_release \
        --checkpoint_dir="$RUN_ROOT/$CHOICE_EFANET" --content="$PAYLOAD/eval/content" \
        --style="$PAYLOAD/eval/style" --pairs=4 --size=512 \
        --vgg_file="$VGG_FILE" --nocopy_vgg \
        --provenance="$RUN_ROOT/machine.json" --output_dir="$OUT/efanet" $RELEASE_FLAGS
    release_status=$?
    rm -f "$OUT/efanet/README.md"  # 8 files come back; the card is rewritten here
else
    stage "no EFANet variant passes the rule: nothing to release"
fi
if [[ -n "$CHOICE_ADAIN" ]] && ((HARD_LIMIT_S - $(elapsed) > 40)); then
    stage "AdaIN's weights (float16): $CHOICE_ADAIN"
    rm -rf "$RUN_ROOT/adain_release"
    timeout -k 5 $((HARD_LIMIT_S - $(elapsed) - 20)) "$PYTHON" -m tools.make_release \
        --checkpoint_dir="$RUN_ROOT/$CHOICE_ADAIN" --content="$PAYLOAD/eval/content" \
        --style="$PAYLOAD/eval/style" --pairs=1 --size=256 --int8_min_params=1000000000 \
        --vgg_file="$VGG_FILE" --nocopy_vgg \
        --output_dir="$RUN_ROOT/adain_release" &&
        tar -cf "$OUT/adain.tar" -C "$RUN_ROOT" adain_release
fi

stage "results in $OUT (at most 8 files of < 16 MiB come back)"
find "$OUT" -type f -printf "%s\t%P\n" | sort -k2
count=$(find "$OUT" -type f | wc -l)
big=$(find "$OUT" -type f -size +16777215c | wc -l)
((count <= 8 && big == 0)) || echo "WARNING: $count files, $big over 16 MiB: some will not come back"
stage "done"
exit $release_status
