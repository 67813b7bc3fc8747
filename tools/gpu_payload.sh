#!/usr/bin/env bash
# Builds gpu_payload/ (git-ignored), everything tools/gpu_train.sh needs on a
# CUDA machine with JAX that has no network, no TensorFlow and no keras:
#   wheels/    keras, namex, optree, safetensors (Python 3.12, manylinux x86_64): keras'
#              other needs (absl-py, numpy, rich, h5py, ml-dtypes, packaging)
#              are on that machine already
#   data/      ../shared/data/train/{content,style} and SOURCES.md (training)
#   eval/      4 photos and 4 artworks of ../shared/images: the quantisation
#              check and the sample grid only, never training; and
#              styles256/, all 20 artworks as 256 px centre squares (JPEG),
#              for the sweep's style-dependence report
#   vgg19_to_relu4_1_float16.h5   the fixed encoder, unless the shipped release
#              (pretrained/efanet/, which travels with the tree) holds it
# and checks that the payload and the working tree fit the 64 MiB that travel.
# With the release in the tree the training images no longer fit as they are:
# they are re-encoded (JPEG, their 512 px short side kept) at quality 85, 80 or 75,
# the highest that fits, else an even subset of each folder at 75 (printed).
#
#   bash tools/gpu_payload.sh            # from the repository root, in the project's
#                                        # venv (Pillow); needs pip + PyPI
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
PAYLOAD=gpu_payload
# The versions the project is tested with (keras as in .venv).
WHEELS=("keras==3.15.1" "namex==0.1.0" "optree==0.20.0" "safetensors==0.8.0")
EVAL_CONTENT=(golden_gate.jpg chicago.jpg sailboat.jpg brad_pitt.jpg)
EVAL_STYLE=(la_muse.jpg woman_with_hat_matisse.jpg brushstrokes.jpg sketch.png)
LIMIT=$((64 * 1024 * 1024))

rm -rf "$PAYLOAD"
mkdir -p "$PAYLOAD/wheels" "$PAYLOAD/data" "$PAYLOAD/eval/content" "$PAYLOAD/eval/style" \
    "$PAYLOAD/eval/styles256"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$PAYLOAD/wheels" "${WHEELS[@]}"
cp -r "$SHARED/data/train/content" "$SHARED/data/train/style" "$SHARED/data/train/SOURCES.md" \
    "$PAYLOAD/data/"
for f in "${EVAL_CONTENT[@]}"; do cp "$SHARED/images/content/$f" "$PAYLOAD/eval/content/"; done
for f in "${EVAL_STYLE[@]}"; do cp "$SHARED/images/style/$f" "$PAYLOAD/eval/style/"; done
python3 - "$SHARED/images/style" "$PAYLOAD/eval/styles256" <<'EOF'
import os, sys
from exchange_st.data import image_io
source, target = sys.argv[1:]
for path in image_io.list_images(source):
    stem = os.path.splitext(os.path.basename(path))[0]
    image_io.save_image(os.path.join(target, stem + ".jpg"), image_io.load_square(path, 256))
EOF
RELEASE=pretrained/efanet
if [[ -f "$RELEASE/manifest.json" && -f "$RELEASE/vgg19_to_relu4_1_float16.h5" ]]; then
    echo "VGG: the release's copy ($RELEASE/vgg19_to_relu4_1_float16.h5)"
else
    cp "$SHARED/weights/vgg19_to_relu4_1_float16.h5" "$PAYLOAD/"
fi
# Read-only copies would stop the next run's rm -rf.
chmod -R u+w "$PAYLOAD"

# What else travels: tracked files and untracked ones git does not ignore.
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb | tail -1 | cut -f1)
payload=$(du -sb "$PAYLOAD" | cut -f1)
if (( payload + tree >= LIMIT )); then
    data=$(du -sb "$PAYLOAD/data" | cut -f1)
    budget=$((LIMIT - tree - (payload - data) - 512 * 1024))
    python3 - "$PAYLOAD/data" "$budget" <<'EOF' || exit 1
import os, sys
from PIL import Image
root, budget = sys.argv[1], int(sys.argv[2])
folders = [os.path.join(root, d) for d in ("content", "style")]
originals = {
    os.path.join(d, f): Image.open(os.path.join(d, f)).convert("RGB")
    for d in folders for f in sorted(os.listdir(d))
}

def total():
    return sum(os.path.getsize(os.path.join(d, f)) for d in folders for f in os.listdir(d))

def encode(quality, keep):
    for path, image in originals.items():
        if path in keep:
            image.save(path, "JPEG", quality=quality)
        elif os.path.exists(path):
            os.remove(path)
    return total()

keep = set(originals)
for quality in (85, 80, 75):
    size = encode(quality, keep)
    print(f"training images at JPEG quality {quality}: {size // 1024} KiB (budget {budget // 1024} KiB)")
    if size <= budget:
        break
else:
    # Still too large: an even subset of each folder, at quality 75, as large as fits.
    for share in [k / 20 for k in range(19, 0, -1)]:
        keep = set()
        for d in folders:
            files = [p for p in originals if os.path.dirname(p) == d]
            step = 1 / share
            keep.update(files[int(i * step)] for i in range(int(len(files) * share)))
        size = encode(75, keep)
        if size <= budget:
            print(f"an even {share:.0%} of each folder at quality 75: {len(keep)} images, "
                  f"{size // 1024} KiB (budget {budget // 1024} KiB)")
            break
    else:
        sys.exit("the training images do not fit")
EOF
fi

payload=$(du -sb "$PAYLOAD" | cut -f1)
ls -l "$PAYLOAD/wheels"
echo "content $(ls "$PAYLOAD/data/content" | wc -l) files, style $(ls "$PAYLOAD/data/style" | wc -l) files"
echo "payload $((payload / 1024)) KiB + working tree $((tree / 1024)) KiB = $(((payload + tree) / 1024)) KiB of $((LIMIT / 1024)) KiB"
if (( payload + tree >= LIMIT )); then
    echo "too large to travel: the limit is 64 MiB" >&2
    exit 1
fi
