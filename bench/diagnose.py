r"""Trainability diagnostics of an efanet model: activation scale per stage, gradient norm per group.

Prints two tables for one batch of training crops: the mean, std and spatial
std of every stage of the `I_s->c` path (VGG features, codes, `v_w`/`v_c`/
`v_r`, content code, `R_pool`, `R_fusion`, decoder stages, output), and the
gradient norm each loss term of Eq. 7 sends to each trainable group. A flat
output shows as a spatial std near 0; a loss term that drowns the others
shows as a row of norms orders of magnitude above theirs.

    python -m bench.diagnose --content_dir=../shared/data/train/content \
        --style_dir=../shared/data/train/style \
        --vgg_weights=../shared/weights/vgg19_to_relu4_1_float16.h5 [--initialization=keras]

With `--checkpoint=PATH` (a train.py model_dir or a `.weights.h5`, e.g. one
that `bench.learning_check --save_weights` wrote) the trained model is
examined instead, and `--liveness_dir` adds whether its covariance
compressor still tells images apart: the fraction of live ReLU channels and
the RMS of each conv, and the codes' spread across the images of that
directory (0 when every image gets the same code). `--dependence_style_dir`
adds the style-dependence report (`exchange_st.evaluation.style_dependence`:
each stage's spread across those styles for the first content of the batch);
`python -m bench.style_dependence` prints it alone, on any backend.
"""

from __future__ import annotations

import keras
import numpy as np
from absl import app, flags

from exchange_st.data import image_io, sources
from exchange_st.data import pipeline as data_lib
from exchange_st.evaluation import diagnostics, learning_report, style_dependence
from exchange_st.nn import losses
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.nn.model_options import INITIALIZATIONS
from exchange_st.saving import loader

FLAGS = flags.FLAGS
flags.DEFINE_string("content_dir", None, "Content images.", required=True)
flags.DEFINE_string("style_dir", None, "Style images.", required=True)
flags.DEFINE_string("vgg_weights", "imagenet", "VGG-19 weights: 'imagenet' or an h5 path.")
flags.DEFINE_enum("initialization", "scaled", list(INITIALIZATIONS), "Model initialisation.")
flags.DEFINE_enum("perceptual_norm", "squared", list(losses.PERCEPTUAL_NORMS), "Eq. 3-4 norm.")
flags.DEFINE_integer("fusion_rank", 1, "Projections of Eq. 1-2.")
flags.DEFINE_string(
    "compressor_initializer", "glorot_uniform", "Kernel initializer of the compressor's convs."
)
flags.DEFINE_integer("crop_size", 128, "Crop side.")
flags.DEFINE_integer("batch_size", 4, "Pairs in the batch.")
flags.DEFINE_integer("seed", 0, "Seed of the weights and the crops.")
flags.DEFINE_string("checkpoint", None, "Trained model (model_dir or .weights.h5); default fresh.")
flags.DEFINE_string("liveness_dir", None, "Images on which to check the compressor's liveness.")
flags.DEFINE_integer("liveness_size", 128, "Side the liveness images are cropped to.")
flags.DEFINE_string(
    "dependence_style_dir", None, "Styles over which each stage's style dependence is reported."
)


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.checkpoint:
        model = loader.load(FLAGS.checkpoint, expect=ExchangeStyleTransfer)
    else:
        model = ExchangeStyleTransfer(
            vgg_weights=FLAGS.vgg_weights,
            initialization=FLAGS.initialization,
            fusion_rank=FLAGS.fusion_rank,
            compressor_initializer=FLAGS.compressor_initializer,
            perceptual_norm=FLAGS.perceptual_norm,
        )
    cfg = sources.DataConfig(
        FLAGS.content_dir,
        FLAGS.style_dir,
        resize_short_side=2 * FLAGS.crop_size,
        crop_size=FLAGS.crop_size,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
    )
    batch = next(iter(data_lib.make_pair_dataset(cfg)))
    content, style = batch["content"], batch["style"]
    stats = diagnostics.stage_statistics(model, content, style)
    values, norms = diagnostics.gradient_norms(model, content, style)
    print(diagnostics.format_report(stats, values, norms))
    if FLAGS.liveness_dir:
        images = np.stack(
            [
                image_io.load_square(p, FLAGS.liveness_size)
                for p in image_io.list_images(FLAGS.liveness_dir)
            ]
        )
        print(learning_report.format_liveness(learning_report.code_liveness(model, images)))
    if FLAGS.dependence_style_dir:
        styles = np.stack(
            [
                image_io.load_square(p, FLAGS.crop_size)
                for p in image_io.list_images(FLAGS.dependence_style_dir)
            ]
        )
        report = style_dependence.style_dependence(model, np.asarray(content[0]), styles)
        print(style_dependence.format_report(report, "style dependence (first content)"))


if __name__ == "__main__":
    app.run(main)
