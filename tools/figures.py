r"""The paper's figures from a trained model: the stylization matrix, the alpha strip, two styles by mask, the four outputs.

    python -m tools.figures --model=pretrained/efanet --run=~/runs/cpu_preview \
        --content_dir=../shared/images/content --style_dir=../shared/images/style \
        --mask=../shared/images/mask/mask.png --output_dir=docs/images

Writes into `--output_dir`:

- `matrix.png` (Fig. 15's layout): the styles `--styles` along the top, one
  row per evaluation content: the content, then its stylization by each;
- `alpha.png` (Fig. 9): one pair at alpha 0, 0.25, 0.5, 0.75, 1 (Eq. 8);
- `mask.png` (Fig. 10): a content, the mask, two styles, and the content
  with the first style where the mask is bright and the second elsewhere;
- `outputs.png` (Fig. 17), from a training run (`--run`, whose weights hold
  the second decoder a release leaves out): I_c, I_s, I_s->c, I_c->s, I_c->c,
  I_s->s for the first pairs.

Every picture at `--size` px per cell (square centre crops, as eval.py loads
images). Runs on TensorFlow or JAX.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from absl import app, flags

from exchange_st.data import image_io
from exchange_st.saving import checkpoints

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Release directory, training model_dir or .weights.h5 file.")
flags.DEFINE_string("run", None, "Training model_dir for outputs.png (all four outputs).")
flags.DEFINE_string("content_dir", None, "Evaluation content images.", required=True)
flags.DEFINE_string("style_dir", None, "Evaluation style images.", required=True)
flags.DEFINE_list(
    "styles",
    ["la_muse", "woman_with_hat_matisse", "brushstrokes", "sketch", "mondrian"],
    "File stems of the matrix's styles (the first two also serve the mask figure).",
)
flags.DEFINE_string("mask", None, "Mask image of the two-style figure (bright: first style).")
flags.DEFINE_integer("size", 256, "Side of each cell.")
flags.DEFINE_integer("rows", 4, "Pairs shown in outputs.png.")
flags.DEFINE_string("output_dir", None, "Where the PNGs go.", required=True)

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _by_stem(directory, stems, size):
    paths = {os.path.splitext(os.path.basename(p))[0]: p for p in image_io.list_images(directory)}
    missing = [s for s in stems if s not in paths]
    if missing:
        raise app.UsageError(f"{directory} has no image named {missing} (--styles)")
    return [image_io.load_square(paths[s], size) for s in stems]


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def matrix(model, contents, styles) -> np.ndarray:
    """Fig. 15: the styles on top, then each content and its stylizations."""
    rows = [[np.ones_like(styles[0])] + list(styles)]
    for c in contents:
        rows.append([c] + [_numpy(model.stylize(c[None], s[None]))[0] for s in styles])
    return image_io.make_grid(rows, pad=4)


def alpha_strip(model, content, style) -> np.ndarray:
    """Fig. 9: the content, then Eq. 8's trade-off from alpha 0 to 1, then the style."""
    cells = [content] + [_numpy(model.stylize(content[None], style[None], a))[0] for a in ALPHAS]
    return image_io.make_grid([cells + [style]], pad=4)


def mask_figure(model, content, mask, first, second) -> np.ndarray:
    """Fig. 10: the first style where the mask is bright, the second elsewhere."""
    region = (mask[..., 0] > 0.5).astype(np.float32)
    out = model.stylize_regions(
        content[None], [first[None], second[None]], [region[None], 1.0 - region[None]]
    )
    shown = np.repeat(mask, 3, axis=-1)
    return image_io.make_grid([[content, shown, first, second, _numpy(out)[0]]], pad=4)


def four_outputs(model, contents, styles) -> np.ndarray:
    """Fig. 17: I_c, I_s, and the model's four images I_s->c, I_c->s, I_c->c, I_s->s."""
    rows = []
    for c, s in zip(contents, styles):
        out = model(c[None], s[None])
        images = [np.clip(_numpy(out[k])[0], 0.0, 1.0) for k in ("s2c", "c2s", "c2c", "s2s")]
        rows.append([c, s] + images)
    return image_io.make_grid(rows, pad=4)


def main(argv):
    del argv
    if not FLAGS.model and not FLAGS.run:
        raise app.UsageError("give --model (a release or run) and/or --run (a training run)")
    size = FLAGS.size
    contents = [image_io.load_square(p, size) for p in image_io.list_images(FLAGS.content_dir)]
    styles = _by_stem(FLAGS.style_dir, FLAGS.styles, size)
    written = []

    def save(name, picture):
        path = os.path.join(FLAGS.output_dir, name)
        image_io.save_image(path, picture)
        written.append(path)

    model = checkpoints.load_model(FLAGS.model or FLAGS.run)
    save("matrix.png", matrix(model, contents, styles))
    save("alpha.png", alpha_strip(model, contents[0], styles[0]))
    if FLAGS.mask:
        mask = image_io.load_square(FLAGS.mask, size)[..., :1]
        save("mask.png", mask_figure(model, contents[0], mask, styles[0], styles[1]))
    if FLAGS.run:
        run_model = checkpoints.load_model(FLAGS.run)
        n = min(FLAGS.rows, len(contents))
        all_styles = [image_io.load_square(p, size) for p in image_io.list_images(FLAGS.style_dir)]
        save("outputs.png", four_outputs(run_model, contents[:n], all_styles[:n]))
    print("\n".join(f"Wrote {p}" for p in written))


if __name__ == "__main__":
    app.run(main)
