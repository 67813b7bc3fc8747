r"""Learning check: does a fresh model learn in its first few hundred steps?

Trains each model from the same seed on random crops of the training set
(Adam of Sec. 3.5 with its warm-up, `optim.make_optimizer`; the objective
of each model) and at steps 0, `report_every`, ... prints every loss term
and the perceptual loss of Table 1 (`metrics.perceptual_loss`) of the
stylizations of fixed evaluation pairs, their spatial standard deviation
(a flat image has ~0), the correlation of their luminance with the
content's (structure kept), how much the style changes efanet's output
(`s2c-c2c`), how much the output changes from pair to pair (`x-pair`: 0
when the model paints one fixed image whatever its inputs), how much of the
style loss the pair's own style removes compared with another pair's
(`gain`, `learning_report.style_gain`: 0 when the output ignores the style), and for efanet the codes' spread
across the evaluation images (`codes`, 0 when every image gets the same
code; ~0.02 in a fresh model), the fraction of the compressor's last ReLU channels still live
(`alive`) and how much `v_r_s`, the direction through which the style
reaches the decoder, changes across the evaluation styles (`vr%`: its
spread over its RMS, `style_dependence`; the paper's configuration
collapses toward 0.35%), and for every model whether the output's palette
follows the style's across those styles (`colour`,
`style_dependence.colour_follow`: the fraction of the style's mean-colour
change the output takes on, then the correlation in brackets; both ~1 for a
trained AdaIN, ~0 for one palette; `chroma`: the same without the grey
level, so brightness alone does not count), and how much of the outputs'
Gram style loss their mean colour holds (`hue`,
`style_dependence.hue_headroom`: the share a shift to each style's mean
colour removes; ~0 once the palette follows the style, large when the
objective asks for the style's colours and the model does not paint them). One PNG per model shows `s2c` (and `c2c` for
efanet) of every pair at every reported step, one row per step; results.json
holds every stage's style dependence at every report.

    python -m bench.learning_check \
        --content_dir=../shared/data/train/content --style_dir=../shared/data/train/style \
        --eval_content_dir=../shared/images/content --eval_style_dir=../shared/images/style \
        --vgg_weights=../shared/weights/vgg19_to_relu4_1_float16.h5 \
        --models='efanet;efanet:fusion_rank=4;efanet:initialization=keras,warmup_steps=0;adain'

A model spec is `efanet` or `adain`, optionally followed by `:key=value,...`
overrides: constructor arguments (`efanet:fusion_rank=4`,
`efanet:initialization=keras`), `LossConfig` fields
(`efanet:perceptual_norm=rms`), `warmup_steps`, `init_weights=<file>`: start
from the weights an earlier check saved (`--save_weights`), e.g. to train one
objective after another, and `rec_only_steps=<n>` (efanet, a multiple of
`--report_every`): Eq. 5 alone for the first n steps, then Eq. 7, as
`train.py --rec_only_steps` trains (Adam restarts at the switch, `optim.restart`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import keras
import numpy as np
from absl import app, flags, logging

from exchange_st.baselines import adain as adain_lib
from exchange_st.saving import serialization
from exchange_st.data import image_io, sources
from exchange_st.data import pipeline as data_lib
from exchange_st.evaluation import learning_report, style_dependence
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.training import optim, train_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("content_dir", None, "Training content images.", required=True)
flags.DEFINE_string("style_dir", None, "Training style images.", required=True)
flags.DEFINE_string("eval_content_dir", None, "Evaluation content images.", required=True)
flags.DEFINE_string("eval_style_dir", None, "Evaluation style images.", required=True)
flags.DEFINE_string("vgg_weights", "imagenet", "VGG-19 weights: 'imagenet' or an h5 path.")
flags.DEFINE_string("models", "efanet;adain", "Model specs separated by ';' (module docstring).")
flags.DEFINE_integer("steps", 300, "Optimizer steps per model.")
flags.DEFINE_integer("report_every", 100, "Steps between reports and grid rows.")
flags.DEFINE_integer("crop_size", 64, "Training crop side.")
flags.DEFINE_integer("resize_short_side", 128, "Short side before cropping.")
flags.DEFINE_integer("batch_size", 4, "Pairs per step (4 in the paper).")
flags.DEFINE_float("lr", 1e-4, "Adam learning rate after the warm-up (Sec. 3.5).")
flags.DEFINE_integer("warmup_steps", optim.DEFAULT_WARMUP_STEPS, "Learning-rate warm-up steps.")
flags.DEFINE_integer("eval_pairs", 4, "Evaluation pairs (content i with style i).")
flags.DEFINE_integer("eval_size", 128, "Side of the evaluation images.")
flags.DEFINE_integer(
    "dependence_styles",
    20,
    "Evaluation styles over which efanet's style dependence (vr%) is measured, with the "
    "first evaluation content.",
)
flags.DEFINE_integer("seed", 0, "Seed of the weights and the crops.")
flags.DEFINE_string("output_dir", "bench_out/learning_check", "Grids and results.json.")
flags.DEFINE_bool(
    "save_weights",
    False,
    "Also write each model's weights (with their config) at every report, so a long run "
    "leaves checkpoints that eval.py and exchange-st-stylize load.",
)


def parse_spec(spec: str) -> tuple[str, dict]:
    """`"efanet:fusion_rank=4"` -> `("efanet", {"fusion_rank": 4})`."""
    name, _, rest = spec.partition(":")
    if name not in ("efanet", "adain"):
        raise ValueError(f"model spec {spec!r} must start with 'efanet' or 'adain'")
    kwargs = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return name, kwargs


def build(spec: str, vgg_weights: str):
    """The model of `spec`, compiled with its optimizer (it owns its objective).

    Returns the model and the steps it trains on Eq. 5 alone (`rec_only_steps`).
    """
    name, kwargs = parse_spec(spec)
    rec_only_steps = int(kwargs.pop("rec_only_steps", 0))
    if rec_only_steps and (name != "efanet" or rec_only_steps % FLAGS.report_every):
        raise ValueError(
            f"model spec {spec!r}: rec_only_steps must be a multiple of --report_every "
            f"({FLAGS.report_every}) and applies to efanet only"
        )
    optimizer = optim.make_optimizer(FLAGS.lr, kwargs.pop("warmup_steps", FLAGS.warmup_steps))
    init_weights = kwargs.pop("init_weights", None)
    if name == "adain":
        model = adain_lib.AdaINNet(vgg_weights=vgg_weights, **kwargs)
    else:
        model = ExchangeStyleTransfer(vgg_weights=vgg_weights, **kwargs)
    model.build()
    if init_weights:
        # One objective after another: a check saved with --save_weights goes on
        # under this spec's objective (loss weights are not variables).
        model.load_weights(init_weights)
    # As train.py trains (training.train_lib): `fit` with the model's compute_loss.
    model.compile(optimizer=optimizer, jit_compile=False)
    return model, rec_only_steps


class Reporter(keras.callbacks.Callback):
    """Calls `report(step, train_terms)` at the end of every `fit` epoch (`report_every` steps).

    `train_terms` are the epoch's means of the loss terms (`total` is Eq. 7's
    or AdaIN's total). Also stops `fit` at `steps` and moves `progbar`.
    """

    def __init__(self, report, steps, progbar):
        super().__init__()
        self.report, self.steps = report, steps
        self.progbar, self.step, self.last_logs = progbar, 0, {}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.last_logs = dict(logs or {})
        self.progbar.update(self.step, [("total", float(self.last_logs.get("loss", np.nan)))])
        if self.step >= self.steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.report(self.step, _train_terms(logs or self.last_logs))


def _train_terms(logs) -> dict:
    terms = {k: float(v) for k, v in logs.items() if k != "loss"}
    terms["total"] = float(logs["loss"])
    return terms


def train_and_report(spec, eval_set: learning_report.EvalSet) -> dict:
    keras.utils.set_random_seed(FLAGS.seed)
    model, rec_only_steps = build(spec, FLAGS.vgg_weights)
    data_cfg = sources.DataConfig(
        content_source=FLAGS.content_dir,
        style_source=FLAGS.style_dir,
        resize_short_side=FLAGS.resize_short_side,
        crop_size=FLAGS.crop_size,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
    )
    dataset = data_lib.make_pair_dataset(data_cfg)
    name = spec.replace(":", "_").replace("=", "").replace(",", "_").replace(os.sep, "_")
    if len(name) > 120:  # File names stop at 255 bytes; an init_weights path is long.
        name = f"{name[:100]}_{hashlib.sha1(spec.encode()).hexdigest()[:10]}"
    path = os.path.join(FLAGS.output_dir, name)
    reports, rows = [], []

    def report(step, train_terms):
        images, scores = learning_report.evaluate(model, eval_set)
        reports.append({"step": step, "train": train_terms, "eval": scores})
        rows.append(images)
        # A long run reports (and saves) as it goes: a stop loses nothing.
        print(format_table([{"spec": spec, "reports": reports[-1:]}]), flush=True)
        if FLAGS.save_weights:
            serialization.save_weights(model, f"{path}.weights.h5", step=step)

    # Step 0: the fresh model's terms on the first batch.
    batch = next(iter(dataset))
    out = model(batch["content"], batch["style"], training=False)
    terms = model.loss_terms(out, batch["content"], batch["style"])
    report(0, {k: float(v) for k, v in terms.items()})
    progbar = keras.utils.Progbar(FLAGS.steps, unit_name="step")
    reporter = Reporter(report, FLAGS.steps, progbar)
    start = time.perf_counter()
    # One `fit` per objective (train_lib's phases); each keeps one iterator
    # over the crops, and the second skips the batches the first has read.
    done = 0
    for end, reconstruction_only in (
        (min(rec_only_steps, FLAGS.steps), True),
        (FLAGS.steps, False),
    ):
        if end <= done:
            continue
        train_lib.begin_phase(model, reconstruction_only, restart=done > 0)
        reporter.steps = end
        model.fit(
            dataset.skip(done),
            epochs=-(-(end - done) // FLAGS.report_every),
            steps_per_epoch=FLAGS.report_every,
            callbacks=[reporter],
            verbose=0,
        )
        done = end
    seconds = time.perf_counter() - start
    strips = [r.pop("styles") for r in rows if "styles" in r]
    write_grid(path + ".png", eval_set.content, eval_set.style, rows)
    result = {"spec": spec, "seconds": seconds, "reports": reports, "grid": path + ".png"}
    if strips:
        result["style_strip"] = path + "_styles.png"
        styles = eval_set.dependence_styles[: len(strips[0])]
        write_style_strip(result["style_strip"], styles, strips)
    return result


def write_grid(path, content, style, rows):
    """First row: content over style of each pair; then one row per reported step."""
    header = [np.concatenate([c, s], axis=0) for c, s in zip(content, style)]
    grid = [header]
    for images in rows:
        grid.append(
            [np.concatenate([images[k][i] for k in images], axis=0) for i in range(len(content))]
        )
    image_io.save_image(path, image_io.make_grid(grid, pad=2))


def write_style_strip(path, styles, rows):
    """First row: the styles; then, per reported step, the first content under each of them.

    A model that ignores the style paints one image across each row.
    """
    image_io.save_image(path, image_io.make_grid([list(styles)] + [list(r) for r in rows], pad=2))


def format_table(results) -> str:
    head = (
        f"{'model':<44}{'step':>5}{'content':>9}{'style':>9}{'rec':>7}{'com':>9}"
        f"{'| eval content':>15}{'style':>8}{'total':>8}{'sp.std':>8}{'corr':>7}{'s2c-c2c':>8}"
        f"{'x-pair':>7}{'gain':>7}{'codes':>9}{'alive':>6}{'vr%':>7}{'colour':>12}{'chroma':>12}{'hue':>6}"
    )
    lines = [head]
    for r in results:
        for rep in r["reports"]:
            t, e = rep["train"], rep["eval"]
            lines.append(
                f"{r['spec']:<44}{rep['step']:>5}{t['content']:>9.3g}{t['style']:>9.3g}"
                f"{t.get('rec', float('nan')):>7.3g}{t.get('com', float('nan')):>9.3g}"
                f"{e['content']:>15.3g}{e['style']:>8.3g}{e['total']:>8.3g}"
                f"{e['spatial_std']:>8.3f}{e['luminance_corr']:>7.2f}"
                f"{e.get('s2c_minus_c2c', float('nan')):>8.3f}"
                f"{e.get('pair_std', float('nan')):>7.3f}"
                f"{e.get('style_gain', float('nan')):>7.3f}"
                f"{e.get('code_std', float('nan')):>9.2g}"
                f"{e.get('last_conv_alive', float('nan')):>6.2f}"
                f"{100 * e.get('v_r_spread', float('nan')):>7.2f}"
                f"{style_dependence.format_follow(e.get('colour_follow')):>12}"
                f"{style_dependence.format_follow(e.get('chroma_follow')):>12}"
                f"{e.get('hue_headroom', float('nan')):>6.2f}"
            )
    return "\n".join(lines)


def main(argv):
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    eval_set = learning_report.load_eval_set(
        FLAGS.eval_content_dir,
        FLAGS.eval_style_dir,
        FLAGS.eval_size,
        FLAGS.eval_pairs,
        FLAGS.dependence_styles,
    )
    results = []
    for spec in filter(None, (m.strip() for m in FLAGS.models.split(";"))):
        logging.info("Training %s for %d steps.", spec, FLAGS.steps)
        results.append(train_and_report(spec, eval_set))
        print(format_table(results[-1:]), flush=True)
        last = results[-1]["reports"][-1]["eval"]
        if "style_dependence" in last:
            print(
                style_dependence.format_report(
                    last["style_dependence"], f"{spec}: style dependence at the last step"
                ),
                flush=True,
            )
    print(format_table(results))
    with open(os.path.join(FLAGS.output_dir, "results.json"), "w") as f:
        json.dump({"flags": FLAGS.flag_values_dict(), "results": results}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
