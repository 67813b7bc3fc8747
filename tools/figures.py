r"""The paper's figures from the releases: the matrix, the methods compared, the alpha strip, two styles by mask, the four outputs.

    python -m tools.figures --model=pretrained/efanet --adain=pretrained/adain \
        --run=~/runs/cpu_preview --content_dir=../shared/images/content \
        --style_dir=../shared/images/style --mask=../shared/images/mask/mask.png \
        --vgg_weights=../shared/weights/vgg19_to_relu4_1_float16.h5 --output_dir=docs/images

Writes into `--output_dir`:

- `matrix.png` (Fig. 15's layout): the styles `--styles` along the top, one
  row per evaluation content: the content, then its stylization by each;
- `comparison.png` (Fig. 5), with `--adain`: per pair (content i of
  `--content_dir` with style i of `--styles`, `--comparison_pairs` of them) the
  content, the style, then EFANet (`--model`), AdaIN (`--adain`), WCT on
  AdaIN's decoder and, with `--gatys_iterations` > 0 (TensorFlow), Gatys et al.;
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

from absl import app, flags

from exchange_st.data import image_io
from exchange_st.evaluation import figures
from exchange_st.saving import loader

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Release directory, training model_dir or .weights.h5 file.")
flags.DEFINE_string("run", None, "Training model_dir for outputs.png (all four outputs).")
flags.DEFINE_string(
    "adain", None, "AdaIN release or run for comparison.png (e.g. pretrained/adain); unset: none."
)
flags.DEFINE_integer("comparison_pairs", 4, "Pairs (rows) of comparison.png.")
flags.DEFINE_integer(
    "gatys_iterations", 500, "Gatys et al.'s iterations in comparison.png (0: leave it out)."
)
flags.DEFINE_string("vgg_weights", None, "VGG-19 h5 of Gatys et al. (with --gatys_iterations).")
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


def _by_stem(directory, stems, size):
    paths = {os.path.splitext(os.path.basename(p))[0]: p for p in image_io.list_images(directory)}
    missing = [s for s in stems if s not in paths]
    if missing:
        raise app.UsageError(f"{directory} has no image named {missing} (--styles)")
    return [image_io.load_square(paths[s], size) for s in stems]


def _methods(model):
    """The stylizers of comparison.png's columns, in order: EFANet, AdaIN, WCT, Gatys."""
    from exchange_st.baselines.adain import AdaINNet
    from exchange_st.baselines.wct import WCTStylizer

    adain = loader.load(FLAGS.adain, what="adain", expect=AdaINNet)
    columns = [model.stylize, adain.stylize, WCTStylizer(adain).stylize]
    if FLAGS.gatys_iterations > 0:
        from exchange_st.baselines.gatys import GatysStylizer
        from exchange_st.nn.vgg import VGGEncoder

        if not FLAGS.vgg_weights:
            raise app.UsageError("Gatys et al. need --vgg_weights (or --gatys_iterations=0)")
        gatys = GatysStylizer(VGGEncoder(FLAGS.vgg_weights, name="gatys_vgg"))
        columns.append(lambda c, s: gatys.stylize(c, s, iterations=FLAGS.gatys_iterations))
    return columns


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

    model = loader.load(FLAGS.model or FLAGS.run)
    save("matrix.png", figures.matrix(model, contents, styles))
    if FLAGS.adain:
        n = min(FLAGS.comparison_pairs, len(contents), len(styles))
        save("comparison.png", figures.comparison(_methods(model), contents[:n], styles[:n]))
    save("alpha.png", figures.alpha_strip(model, contents[0], styles[0]))
    if FLAGS.mask:
        mask = image_io.load_square(FLAGS.mask, size)[..., :1]
        save("mask.png", figures.mask_figure(model, contents[0], mask, styles[0], styles[1]))
    if FLAGS.run:
        run_model = loader.load(FLAGS.run)
        n = min(FLAGS.rows, len(contents))
        all_styles = [image_io.load_square(p, size) for p in image_io.list_images(FLAGS.style_dir)]
        save("outputs.png", figures.four_outputs(run_model, contents[:n], all_styles[:n]))
    print("\n".join(f"Wrote {p}" for p in written))


if __name__ == "__main__":
    app.run(main)
