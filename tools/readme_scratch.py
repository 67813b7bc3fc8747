"""The README walk's scratch checkout: the project linked, and a `../shared` of generated files."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
# What the scratch checkout links from the repository.
LINKED = ("train.py", "eval.py", "export_savedmodel.py", "configs", "bench", "tools", "exchange_st")
# Linked too when the repository has it: the shipped release (`--init_from=pretrained/efanet`).
LINKED_IF_PRESENT = ("pretrained",)
# The scratch `../shared` (generated images and a random VGG), beside the folder
# the commands run in, as the real one is beside a checkout.
SHARED = "shared"
VGG_FILES = ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg19_to_relu4_1_float16.h5")


def make_scratch(root: str) -> str:
    """The scratch checkout under `root`; returns the folder commands run in."""
    import numpy as np
    from PIL import Image

    work = os.path.join(root, "repo")
    os.makedirs(work)
    for name in LINKED + tuple(
        n for n in LINKED_IF_PRESENT if os.path.exists(os.path.join(REPO, n))
    ):
        os.symlink(os.path.join(REPO, name), os.path.join(work, name))
    shared = os.path.join(root, SHARED)
    rng = np.random.default_rng(0)

    def picture(path, height, width):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
        base = np.stack([np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in range(3)], -1)
        pixels = 0.5 + 0.35 * base + 0.1 * rng.standard_normal((height, width, 3))
        Image.fromarray(np.uint8(255 * np.clip(pixels, 0, 1))).save(path)

    names = {
        "images/content": ["brad_pitt.jpg", "golden_gate.jpg"],
        "images/style": ["la_muse.jpg", "sketch.png"],
        "data/train/content": [f"c{i}.jpg" for i in range(4)],
        "data/train/style": [f"s{i}.jpg" for i in range(4)],
    }
    for folder, files in names.items():
        for i, name in enumerate(files):
            picture(os.path.join(shared, folder, name), 48 + 8 * i, 56 - 4 * i)
    for folder, files in (("photos", ["p0.jpg", "p1.jpg"]), ("styles", ["a0.jpg", "a1.jpg"])):
        for i, name in enumerate(files):
            picture(os.path.join(work, folder, name), 40 + 8 * i, 48)
    for name in ("photo.jpg", "art.jpg", "a.jpg", "b.jpg"):
        picture(os.path.join(work, name), 40, 48)
    left = np.zeros((40, 48), np.uint8)
    left[:, :24] = 255
    Image.fromarray(left).save(os.path.join(work, "left.png"))
    Image.fromarray(255 - left).save(os.path.join(work, "right.png"))
    _write_clip(
        os.path.join(work, "clip.mp4"), [rng.uniform(0, 255, (32, 48, 3)) for _ in range(3)]
    )
    _write_random_vgg(os.path.join(shared, "weights"))
    # The Python example names the VGG file as if it were in the current folder.
    os.symlink(os.path.join(shared, "weights", VGG_FILES[0]), os.path.join(work, VGG_FILES[0]))
    return work  # `../shared` from here is `shared`.


def _write_clip(path, frames):
    if not importable("imageio"):
        # Without the [video] extra the example must say what to install.
        with open(path, "wb") as f:
            f.write(b"\0" * 64)
        return
    import imageio.v2 as imageio

    imageio.mimwrite(path, [frame.astype("uint8") for frame in frames], fps=8)


def importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _write_random_vgg(folder):
    """Random VGG-19 weights under both file names (block4_conv1 layout, which both load)."""
    os.makedirs(folder, exist_ok=True)
    code = (
        "import sys, keras\n"
        "from exchange_st.nn import vgg\n"
        "keras.utils.set_random_seed(0)\n"
        "encoder = vgg.VGGEncoder(vgg_weights=None)\n"
        "encoder.build((None, 32, 32, 3))\n"
        "for path in sys.argv[1:]:\n"
        "    vgg.write_truncated_weights(encoder, path)\n"
    )
    paths = [os.path.join(folder, name) for name in VGG_FILES]
    subprocess.run([sys.executable, "-c", code, *paths], check=True, capture_output=True)
