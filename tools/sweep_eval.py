r"""What one trained variant of the GPU sweep paints, in numbers and one picture.

    python -m tools.sweep_eval --run_dir=/tmp/gpu_sweep/efanet --content=gpu_payload/eval/content \
        --style=gpu_payload/eval/style --dependence_styles=gpu_payload/eval/styles256 \
        --size=512 --output=/tmp/gpu_sweep/efanet.eval.json --grid=/tmp/gpu_sweep/efanet.grid.jpg

Every content image is stylized with every style at `--size` (square centre
crops, as eval.py loads them); from that matrix it measures:

- Table 1's content and style loss (`metrics.perceptual_loss`) on the pairs
  content i with style i;
- `style_move`: mean |out(c, la_muse) - out(c, sketch)| over the contents,
  how much two very different styles change the picture (0 when the model
  ignores the style); the styles are `--style_a`, `--style_b`;
- `content_corr`: the correlation of each output's luminance with its
  content's, averaged (~0 when the picture does not follow the content);
- `colour_follow`: whether and how far each content's palette follows the
  styles' (`style_dependence.colour_follow` over the matrix's row: `r` and
  `slope`, averaged over the contents; ~1 for a trained AdaIN, ~0 for one
  palette) and `chroma_follow` (the same without the grey level); and
  `hue_headroom`, the share of the Gram style loss that moving each output's
  mean colour to its style's would remove (`style_dependence.hue_headroom`,
  averaged over the contents; ~0.07 for a trained AdaIN at 128 px; rising
  while `chroma_follow` falls is how an efanet loses the hue); reported,
  not part of the rule;
- for an efanet, the style-dependence report (`exchange_st.evaluation.style_dependence`)
  of the first content over every image of `--dependence_styles`;
- the FLOPs of one training step of the run's batch and crop
  (`train_flops.training_step_flops`, 3x convention), for the MFU.

It writes them to `--output` (JSON) and the matrix to `--grid` (first row:
the styles; then one row per content: the content, then its stylization by
each style). Backend-neutral: the sweep runs it on JAX without TensorFlow.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags

from exchange_st.data import image_io
from exchange_st.saving import serialization
from exchange_st.evaluation import style_dependence, style_matrix, train_flops
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import loader

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "The variant's train.py model_dir.", required=True)
flags.DEFINE_string("content", None, "Directory of the content images.", required=True)
flags.DEFINE_string("style", None, "Directory of the style images.", required=True)
flags.DEFINE_string("dependence_styles", None, "Directory of styles for the efanet report.")
flags.DEFINE_integer("size", 512, "Side of the evaluation images.")
flags.DEFINE_integer("dependence_size", 256, "Side of the style-dependence report's images.")
flags.DEFINE_string("style_a", "la_muse", "First style of `style_move` (file name stem).")
flags.DEFINE_string("style_b", "sketch", "Second style of `style_move` (file name stem).")
flags.DEFINE_integer("grid_cell", 256, "Cell height of the grid.")
flags.DEFINE_string("output", None, "JSON file of the numbers.", required=True)
flags.DEFINE_string("grid", None, "Image file of the content x style matrix (.jpg or .png).")
flags.DEFINE_bool(
    "flops_only",
    False,
    "Only the FLOPs of one training step of the run's batch and crop (from its config, "
    "weights not needed), for the MFU while it trains.",
)


def _load(directory, size):
    paths = image_io.list_images(directory)
    return paths, np.stack([image_io.load_square(p, size) for p in paths])


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def step_flops(model, run_dir) -> float | None:
    """FLOPs of one training step of the run (3x convention), or None if unknown."""
    data = serialization.read_run_config(run_dir).get("data", {})
    if "crop_size" not in data or "batch_size" not in data:
        return None
    shape = (data["batch_size"], data["crop_size"], data["crop_size"], 3)
    return float(train_flops.training_step_flops(train_flops.training_flops(model, shape)))


def evaluate(model, contents, styles, style_names) -> tuple[dict, np.ndarray]:
    """The numbers of the module doc and the `[C, S, H, W, 3]` matrix of stylizations."""
    matrix = style_matrix.stylize_matrix(model, contents, styles)
    result = style_matrix.matrix_scores(
        model.encoder, matrix, contents, styles, style_names, FLAGS.style_a, FLAGS.style_b
    )
    return result, matrix


def main(argv):
    del argv
    if FLAGS.flops_only:
        config = serialization.read_model_config(serialization.find_weights(FLAGS.run_dir))
        model = serialization.model_from_serialized(config, vgg_weights=None)
        model.build()
        with open(FLAGS.output, "w", encoding="utf-8") as f:
            json.dump({"step_flops": step_flops(model, FLAGS.run_dir)}, f)
        return
    model = loader.load(FLAGS.run_dir)
    content_paths, contents = _load(FLAGS.content, FLAGS.size)
    style_paths, styles = _load(FLAGS.style, FLAGS.size)
    names = [_stem(p) for p in style_paths]
    result, matrix = evaluate(model, contents, styles, names)
    result.update(
        model=type(model).__name__,
        step=serialization.saved_step(serialization.find_weights(FLAGS.run_dir)),
        size=FLAGS.size,
        contents=[_stem(p) for p in content_paths],
        styles=names,
        step_flops=step_flops(model, FLAGS.run_dir),
    )
    if isinstance(model, ExchangeStyleTransfer) and FLAGS.dependence_styles:
        _, dep_styles = _load(FLAGS.dependence_styles, FLAGS.dependence_size)
        content = image_io.load_square(content_paths[0], FLAGS.dependence_size)
        report = style_dependence.style_dependence(model, content, dep_styles)
        result["style_dependence"] = report
        result["v_r_spread"] = report[style_dependence.KEY_STAGE]["ratio"]
        print(style_dependence.format_report(report, f"{FLAGS.run_dir}: style dependence"))
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    if FLAGS.grid:
        rows = [[np.ones_like(styles[0])] + list(styles)]
        rows += [[c] + list(row) for c, row in zip(contents, matrix)]
        image_io.save_image(FLAGS.grid, image_io.make_grid(rows, pad=2, height=FLAGS.grid_cell))
    print(json.dumps({k: v for k, v in result.items() if k != "style_dependence"}), flush=True)


if __name__ == "__main__":
    app.run(main)
