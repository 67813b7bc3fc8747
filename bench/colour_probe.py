r"""Colour probe of an efanet checkpoint: do `v_c`, `v_r` carry the images' colours, and does the decoder paint them?

For N content/style pairs, two questions per image and for hue (chroma,
the mean colour without its grey level) and brightness (grey) apart:

- carried: the cross-validated R^2 of a linear read of the image's mean
  colour (`style_dependence.colour_probe`) from its own `v_c` and `v_r`,
  for the contents (`v_c_c`, `v_r_c`) and the styles (`v_c_s`, `v_r_s`):
  ~1 when the style heads pass the colour on, ~0 when they do not (under
  the AdaIN fusion `v_c` is the target mean); and from the output's mean
  colour (`c2c` for its content, `s2c` for its style): ~1 when the output's
  colour is a function of it, however weak;
- painted: how far the output's mean colour follows it
  (`style_dependence.colour_follow`: slope, then r in brackets), for the
  reconstruction `c2c` against its content and the stylization `s2c`
  against its style: ~1 when the decoder renders what the vectors carry.

A model whose `v_r` carries hue (R^2 high) but whose `c2c` does not follow
it (slope ~0) has a decoder that has not learned to read hue from `v_r`
(docs/experiments/style_conditioning.md, "What keeps hue out").
An `s2c` whose colour carries its style's (R^2 high) at a small slope paints
the hue it receives, weakly ("The hue under Eq. 7").

    python -m bench.colour_probe --checkpoint=<model_dir or .weights.h5> \
        --content_dir=../shared/data/train/content --style_dir=../shared/data/train/style

Backend-neutral (the model's outputs in NumPy).
"""

from __future__ import annotations

import json

import numpy as np
from absl import app, flags

from exchange_st.data import image_io
from exchange_st.evaluation import style_dependence
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import loader

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Trained efanet (model_dir or .weights.h5).", required=True)
flags.DEFINE_string("content_dir", None, "Content images.", required=True)
flags.DEFINE_string("style_dir", None, "Style images.", required=True)
flags.DEFINE_integer("num_images", 240, "Pairs (content i with style i), drawn with --seed.")
flags.DEFINE_integer("size", 128, "Side the images are cropped to (eval.py's loader).")
flags.DEFINE_integer("batch_size", 8, "Pairs per forward pass.")
flags.DEFINE_integer("seed", 0, "Seed of the draw of images.")
flags.DEFINE_string("json", None, "Also write the numbers to this JSON file.")


def draw_images(directory, count, size, seed):
    """`count` images of `directory` (fewer if it has fewer), in a seeded order, `[N, size, size, 3]`."""
    paths = image_io.list_images(directory)
    order = np.random.default_rng(seed).permutation(len(paths))[:count]
    return np.stack([image_io.load_square(paths[i], size) for i in order])


def main(argv):
    del argv
    model = loader.load(FLAGS.checkpoint, expect=ExchangeStyleTransfer)
    content = draw_images(FLAGS.content_dir, FLAGS.num_images, FLAGS.size, FLAGS.seed)
    style = draw_images(FLAGS.style_dir, FLAGS.num_images, FLAGS.size, FLAGS.seed + 1)
    n = min(len(content), len(style))
    result = style_dependence.colour_report(model, content[:n], style[:n], FLAGS.batch_size)
    print(
        style_dependence.format_colour_report(
            result, f"{FLAGS.checkpoint}: {n} pairs, {FLAGS.size}px"
        )
    )
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
