# Sourced by tools/gpu_train.sh and tools/gpu_sweep.sh (not run on its own): the
# setup both share on a CUDA machine with JAX and no TensorFlow, no keras, no
# network, with gpu_payload/ (tools/gpu_payload.sh) beside the code.
#
# Needs: T0 (the script's start, `date +%s`), PYTHON, PAYLOAD, SITE.
# Honours SKIP_WHEELS=1 (keras already installed), ALLOW_CPU=1 (rehearsal),
# INIT_FROM (the release a run continues: pretrained/efanet by default) and
# FRESH=1 (train from scratch instead).

export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# Every train.py of a script compiles the same steps: the later ones read them
# from this cache instead of compiling again.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax_cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

# The shipped release, which travels with the tree: EFANet runs continue it
# (train.py --init_from: its weights and step, a fresh Adam, its history), so
# that every GPU draw adds to the same model.
INIT_FROM=${INIT_FROM-pretrained/efanet}
VGG_NAME=vgg19_to_relu4_1_float16.h5
# The payload leaves the VGG out when the release holds the same file.
if [[ -f "$PAYLOAD/$VGG_NAME" || ! -f "$INIT_FROM/$VGG_NAME" ]]; then
    VGG_FILE=$PAYLOAD/$VGG_NAME
else
    VGG_FILE=$INIT_FROM/$VGG_NAME
fi
VGG_FLAG="--vgg_weights=$VGG_FILE"

# The train.py flags that continue the release, or none (FRESH=1, or no release).
continue_flags() {
    if [[ "${FRESH:-0}" != 1 && -f "$INIT_FROM/manifest.json" ]]; then
        echo "--init_from=$INIT_FROM"
    fi
}

# The training step a release was made at (0 if it does not say).
release_step() {
    "$PYTHON" -c "import json, sys; m = json.load(open(sys.argv[1] + '/manifest.json'));
print(m['provenance'].get('checkpoint_step') or 0)" "$1"
}

elapsed() { echo $(($(date +%s) - T0)); }
stage() { echo "=== [$(elapsed) s] $*"; }

# Installs the payload's wheels (keras, namex, optree, safetensors) into $SITE and puts them
# and the repository on PYTHONPATH.
install_wheels() {
    if [[ "${SKIP_WHEELS:-0}" != 1 ]]; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "$PAYLOAD"/wheels/*.whl || return 1
        export PYTHONPATH=$SITE:$PWD
    else
        export PYTHONPATH=$PWD
    fi
}

# Prints the versions and devices; fails unless keras runs on JAX and JAX sees
# a GPU (or ALLOW_CPU=1).
check_devices() {
    "$PYTHON" - <<'EOF' || return 1
import os, sys
import jax, keras, numpy, PIL, h5py
print("python", sys.version.split()[0], "| jax", jax.__version__, "| keras", keras.__version__,
      "| numpy", numpy.__version__, "| pillow", PIL.__version__, "| h5py", h5py.__version__)
print("keras backend", keras.backend.backend(), "| devices", jax.devices())
if keras.backend.backend() != "jax":
    sys.exit("keras is not on the JAX backend")
if jax.devices()[0].platform != "gpu" and os.environ.get("ALLOW_CPU") != "1":
    sys.exit("JAX sees no GPU (ALLOW_CPU=1 runs on the CPU anyway)")
EOF
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    fi
}

# Writes the machine's facts (GPU, devices, versions) to $1 as JSON, with $2
# as the seconds spent before the release.
write_machine_facts() {
    "$PYTHON" - "$1" "$2" "$3" <<'EOF'
import json, subprocess, sys
import jax, keras
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True, check=True).stdout.strip()
except (OSError, subprocess.CalledProcessError):
    gpu = None
facts = {"machine": {"gpu": gpu, "devices": [str(d) for d in jax.devices()],
                     "jax": jax.__version__, "keras": keras.__version__},
         "script": sys.argv[3], "seconds_before_release": int(sys.argv[2])}
json.dump(facts, open(sys.argv[1], "w"), indent=1)
EOF
}
