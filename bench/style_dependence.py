r"""Style-dependence report of an efanet checkpoint, release or fresh model (docs/experiments/style_conditioning.md).

For one content image and every style of a directory, prints per stage of
the `I_s->c` path (`f_s`, `f_com`, `f_uni_s`, `v_w_s`, `v_c_s`, `v_r_s`,
`R_fusion`, `s2c`) its RMS, its spread across the styles over that RMS (0:
the stage ignores the style) and the mean absolute deviation from the mean
over styles (`exchange_st.evaluation.style_dependence`); then whether the
output's mean colour follows the style's (`colour_follow`, with and without
the grey level). Backend-neutral: it runs on
JAX without TensorFlow (the GPU scripts call it).

    python -m bench.style_dependence --checkpoint=<model_dir, .weights.h5 or release> \
        --content=../shared/images/content/brad_pitt.jpg --style_dir=../shared/images/style

Without `--checkpoint` a fresh model is built from `--model_config` options
(with `--vgg_weights`), to see a configuration's dependence at
initialisation. `--json` also writes the numbers.
"""

from __future__ import annotations

import json

import keras
import numpy as np
from absl import app, flags

from exchange_st.data import image_io
from exchange_st.evaluation import style_dependence
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import loader
from exchange_st import console

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Trained model (model_dir, .weights.h5 or release).")
flags.DEFINE_string("content", None, "The content image.", required=True)
flags.DEFINE_string("style_dir", None, "The styles (every image of the directory).", required=True)
flags.DEFINE_integer("size", 256, "Side the images are cropped to (eval.py's loader).")
flags.DEFINE_string("vgg_weights", "imagenet", "VGG-19 of a fresh model: 'imagenet' or an h5.")
flags.DEFINE_multi_string("model_config", [], "Options of a fresh model, key=value (train.py's).")
flags.DEFINE_integer("seed", 0, "Seed of a fresh model's weights.")
flags.DEFINE_string("json", None, "Also write the report to this JSON file.")


def main(argv):
    del argv
    if FLAGS.checkpoint:
        model = loader.load(FLAGS.checkpoint, expect=ExchangeStyleTransfer)
        title = FLAGS.checkpoint
    else:
        keras.utils.set_random_seed(FLAGS.seed)
        options = console.parse_options(FLAGS.model_config)
        model = ExchangeStyleTransfer(vgg_weights=FLAGS.vgg_weights, **options)
        title = f"fresh model {options or '(defaults)'}"
    content = image_io.load_square(FLAGS.content, FLAGS.size)
    styles = np.stack(
        [image_io.load_square(p, FLAGS.size) for p in image_io.list_images(FLAGS.style_dir)]
    )
    tensors = style_dependence.stage_tensors(model, content, styles)
    report = {name: style_dependence.spread(values) for name, values in tensors.items()}
    print(style_dependence.format_report(report, f"{title}: {len(styles)} styles, {FLAGS.size}px"))
    if len(styles) >= 3:
        report.update(style_dependence.palette_follow(tensors["s2c"], styles))
        colour, chroma = report["colour_follow"], report["chroma_follow"]
        print(
            f"colour follow (s2c's mean colour against the style's): slope {colour['slope']:.3f}, "
            f"r {colour['r']:.3f}; without the grey level: slope {chroma['slope']:.3f}, "
            f"r {chroma['r']:.3f}"
        )
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    app.run(main)
