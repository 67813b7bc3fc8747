#!/usr/bin/env bash
# The GPU measurement on a CUDA machine with JAX (no TensorFlow), as one prepared command of
# at most ~9 minutes: training steps/s, pairs/s and MFU of efanet at 256x256 (float32 vs
# mixed_bfloat16, fixed batch vs the input pipeline with its wait, train.py's per-step callbacks
# vs none, then batch 16 and jit off), 3 profiled steps, and Table 2 (efanet and AdaIN at
# 256/512/1024, float32 and bfloat16). Each stage has its own time limit and writes its JSON as
# it goes, so a stage that runs out of time still leaves what it measured.
#
# From the repository root:
#   bash bench/gpu_bench.sh                                  # the GPU machine; results in $OUT
#   GPU_BENCH_SCALE=cpu OUT=$(mktemp -d) bash bench/gpu_bench.sh   # rehearsal on a CPU, tiny sizes
#
# Keras (with namex and optree) is not installed there: carry gpu_payload/ (tools/gpu_payload.sh:
# the wheels, installed into /tmp/site first, and the training images, which the pipeline
# variant then reads, JPEG decoding included; without them it reads the builtin procedural
# images). PAYLOAD names another payload folder, GPU_BENCH_DATA another image folder (with
# content/ and style/). Files in $OUT (7): gpu_bench.log,
# train_main.json, inference_none.json, inference_mixed_bfloat16.json, train_batch.json,
# train_jit_off.json, train_profile.xplane.pb[.gz] (3 traced steps of the first training
# variant). The KEY lines of every stage are repeated at the end of the output.
set -uo pipefail

OUT=${OUT:-bench_out/gpu}
SCALE=${GPU_BENCH_SCALE:-gpu}
PY=${PYTHON:-python3}
PAYLOAD=${PAYLOAD:-gpu_payload}
mkdir -p "$OUT"
LOG="$OUT/gpu_bench.log"

export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# A rerun on the same (still warm) machine skips the XLA compilations.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax_cache}

if [[ $SCALE == cpu ]]; then
    CROP=32 BATCH=1 BIG_BATCH=2 STEPS=2 ROUNDS=1 SIZES=32,64 PIPE=3 WORKERS=2
    TOTAL=${GPU_BENCH_SECONDS:-1800} SLOW=5  # CPU compilations are slower: longer limits.
else
    CROP=256 BATCH=4 BIG_BATCH=16 STEPS=20 ROUNDS=3 SIZES=256,512,1024 PIPE=20 WORKERS=12
    TOTAL=${GPU_BENCH_SECONDS:-520} SLOW=1
fi

# stage NAME LIMIT_S MIN_S COMMAND...: runs COMMAND for at most LIMIT_S seconds (less if the
# total runs short; skipped if fewer than MIN_S are left) and goes on whatever it returns.
stage() {
    local name=$1 limit=$(($2 * SLOW)) min=$3
    shift 3
    local left=$((TOTAL - SECONDS - 5))
    ((limit > left)) && limit=$left
    if ((limit < min)); then
        echo "=== $name: skipped, ${left}s left"
        return
    fi
    echo "=== $name (limit ${limit}s, ${SECONDS}s elapsed): $*"
    local t0=$SECONDS
    timeout -k 10 "$limit" "$@"
    echo "=== $name: exit $? after $((SECONDS - t0))s"
}

main() {
echo "=== gpu_bench $(date -u +%FT%TZ) scale=$SCALE out=$OUT total=${TOTAL}s"
if compgen -G "$PAYLOAD/wheels/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$PAYLOAD"/wheels/*.whl || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# A few seconds: versions, devices, one compiled matmul and conv, the project's imports.
command -v nvidia-smi > /dev/null && nvidia-smi -L
timeout 120 "$PY" - << 'EOF' || { echo "=== smoke FAILED: stopping"; exit 1; }
import os, platform, sys, time

t0 = time.time()
import jax
import jax.numpy as jnp
import keras

print(f"python {platform.python_version()}, jax {jax.__version__}, keras {keras.__version__}, "
      f"backend {keras.backend.backend()}")
devices = jax.devices()
print("devices:", ", ".join(f"{d.platform}:{d.id} {d.device_kind}" for d in devices))
if os.environ.get("GPU_BENCH_SCALE", "gpu") == "gpu" and devices[0].platform != "gpu":
    sys.exit("JAX sees no GPU")
try:
    import tensorflow  # noqa: F401
    print("tensorflow: importable")
except ImportError:
    print("tensorflow: not importable")
key = jax.random.key(0)
a = jax.random.normal(key, (2048, 2048), jnp.bfloat16)
print("matmul ok:", float(jax.jit(lambda x: (x @ x).astype(jnp.float32).mean())(a)))
image = jax.random.uniform(key, (1, 64, 64, 3))
kernel = jax.random.normal(key, (3, 3, 3, 8))
conv = jax.jit(lambda x, k: keras.ops.conv(x, k, padding="same"))(image, kernel)
print("conv ok:", conv.shape)
from exchange_st.evaluation import flops  # noqa: F401  (no TensorFlow needed)
from exchange_st.training import train_lib  # noqa: F401  (no TensorFlow needed)
print(f"smoke ok in {time.time() - t0:.1f}s")
EOF

DATA=()
IMAGES=${GPU_BENCH_DATA:-$PAYLOAD/data}
if [[ -d $IMAGES/content && -d $IMAGES/style ]]; then
    DATA=(--content_dir="$IMAGES/content" --style_dir="$IMAGES/style")
fi
echo "pipeline images: ${DATA[*]:-builtin}"
PROFILE=/tmp/gpu_bench_profile
rm -rf "$PROFILE"
TRAIN=(-m bench.train_step --models=efanet --crop_sizes=$CROP --steps=$STEPS --rounds=$ROUNDS)

stage train_main 240 60 "$PY" "${TRAIN[@]}" --batch_sizes=$BATCH \
    --precisions=none,mixed_bfloat16 --input=fixed,pipeline --callbacks=train,none \
    --data_workers=$WORKERS "${DATA[@]}" --pipeline_batches=$PIPE --pipeline_warmup=2 \
    --profile_dir=$PROFILE --profile_steps=3 --output="$OUT/train_main.json"

for precision in none mixed_bfloat16; do
    stage "inference_$precision" 100 40 "$PY" -m bench.inference --sizes=$SIZES --warmup=2 \
        --repeats=10 --budget_s=20 --savedmodel_max_size=0 --eager_max_size=0 \
        --mixed_precision=$precision --output="$OUT/inference_$precision.json"
done

stage train_batch 150 50 "$PY" "${TRAIN[@]}" --batch_sizes=$BIG_BATCH \
    --precisions=mixed_bfloat16 --pipeline_batches=0 --output="$OUT/train_batch.json"

# Op by op: what compiling the whole step buys (each op compiles on first use).
stage train_jit_off 150 60 "$PY" "${TRAIN[@]}" --batch_sizes=$BATCH --jit=off --steps=3 \
    --precisions=mixed_bfloat16 --pipeline_batches=0 --output="$OUT/train_jit_off.json"

trace=$(find "$PROFILE" -name '*.xplane.pb' 2> /dev/null | head -n 1)
if [[ -n $trace ]]; then
    if (($(stat -c %s "$trace") > 15000000)); then
        gzip -c "$trace" > "$OUT/train_profile.xplane.pb.gz"
    else
        cp "$trace" "$OUT/train_profile.xplane.pb"
    fi
fi

# Clocks and power after the work (read only), to tell a throttled card.
command -v nvidia-smi > /dev/null &&
    nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
echo "=== done in ${SECONDS}s; files: $(ls "$OUT" | tr '\n' ' ')"
}

main 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
# The KEY lines of every stage, last (a reply may carry only the end of the output).
grep -h '^KEY' "$LOG"
exit "$status"
