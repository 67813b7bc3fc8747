r"""Measures what the release format costs a trained EFANet (or AdaIN), then writes its release.

    python -m tools.make_release --checkpoint_dir=runs/gpu_jax \
        --content=../shared/images/content --style=../shared/images/style --pairs=4 \
        --vgg_file=../shared/weights/vgg19_to_relu4_1_float16.h5 \
        --output_dir=pretrained/efanet --grid=release_samples.png

For each storage policy of `--int8_min_params` in order (0: every kernel
int8; N: kernels under N parameters float16), it stylizes the pairs with the
float32 weights and with the weights as the release would store them, and
prints the mean and max absolute difference in [0, 1] and in 1/255 steps.
The first policy within the target (mean < 1/255, max < 8/255; docs/design.md, "What int8 costs") is
written to `--output_dir` (the last one if none is), the numbers go into
the manifest's provenance. Without `--output_dir` it only measures. Runs on
TensorFlow or JAX (no TensorFlow needed). An AdaIN run gets the same format
(its decoder; `--int8_min_params=1000000000` keeps every kernel float16).
"""

import csv
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from exchange_st.data import image_io  # noqa: E402
from exchange_st.saving import (  # noqa: E402
    loader,
    quantization,
    release,
    serialization,
)
from exchange_st.training import history  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "checkpoint_dir",
    None,
    "Training model_dir (its latest.weights.h5), a .weights.h5 file, or a release directory.",
)
flags.DEFINE_string("output_dir", None, "Release directory to write; unset: measure only.")
flags.DEFINE_list("content", None, "Content image files or directories of the measured pairs.")
flags.DEFINE_list("style", None, "Style image files or directories of the measured pairs.")
flags.DEFINE_integer("pairs", 4, "Pairs measured: content i with style i, in sorted order.")
flags.DEFINE_integer(
    "size",
    512,
    "Side of the measured images: short side resized to it, centre square cropped (one "
    "shape, so JAX compiles each op once).",
)
flags.DEFINE_list(
    "int8_min_params",
    ["0", "1000000", "2000000"],
    "Storage policies tried in order: kernels with fewer parameters are float16 (0: all int8).",
)
flags.DEFINE_string(
    "vgg_file",
    None,
    "The VGG h5 the model was trained with (checked against its encoder); unset: the "
    "encoder's weights are written as a new file.",
)
flags.DEFINE_boolean(
    "copy_vgg",
    True,
    "Copy --vgg_file into the release; --nocopy_vgg names it (and its sha256) only, for "
    "a machine that may return few files.",
)
flags.DEFINE_string("provenance", None, "JSON file of facts recorded in the manifest.")
flags.DEFINE_string(
    "grid", None, "PNG of each pair: content | style | float32 | as released (optional)."
)
flags.mark_flags_as_required(["checkpoint_dir", "content", "style"])


def _files(entries):
    files = []
    for entry in entries:
        files += image_io.list_images(entry) if os.path.isdir(entry) else [entry]
    return files


def _pairs():
    contents, styles = _files(FLAGS.content), _files(FLAGS.style)
    return [
        (
            image_io.load_square(contents[i % len(contents)], FLAGS.size),
            image_io.load_square(styles[i % len(styles)], FLAGS.size),
        )
        for i in range(FLAGS.pairs)
    ]


def _grid(model, pairs, reference, policy, path):
    with quantization.dequantized_weights(model, policy):
        stored = quantization.stylize_pairs(model, pairs)
    rows = [[c, s, a, b] for (c, s), a, b in zip(pairs, reference, stored)]
    image_io.save_image(path, image_io.make_grid(rows, pad=2))
    logging.info("Wrote %s (content | style | float32 | as released).", path)


def _training_facts(model_dir):
    """The run's settings (config.json) and its last CSV row (losses, steps/s), if there."""
    facts = {"config": serialization.read_run_config(model_dir)}
    log = os.path.join(model_dir, "train_log.csv")
    if os.path.isfile(log):
        with open(log, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows:
            facts["last_log_row"] = {k: float(v) for k, v in rows[-1].items() if v}
    return facts


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        policies = [int(p) for p in FLAGS.int8_min_params]
    except ValueError as e:
        raise app.UsageError(f"--int8_min_params must be integers: {e}") from e
    model = loader.load(FLAGS.checkpoint_dir)
    pairs = _pairs()
    start = time.monotonic()
    reference = quantization.stylize_pairs(model, pairs)
    print(f"float32 stylizations: {time.monotonic() - start:.0f} s", flush=True)

    def report(policy, error, ok):
        print(
            f"int8_min_params={policy}: mean |diff| {error['mean_abs']:.2e} "
            f"({error['mean_abs'] * 255:.3f}/255), max {error['max_abs']:.2e} "
            f"({error['max_abs'] * 255:.2f}/255) over {len(pairs)} pairs at {FLAGS.size}^2: "
            f"{'within' if ok else 'OUTSIDE'} the target",
            flush=True,
        )

    chosen, measured = quantization.choose_policy(model, pairs, policies, reference, report)
    if not measured[str(chosen)]["within_target"]:
        logging.warning("No storage policy meets the target; writing the most precise one tried.")
    # The release first: a run cut short after it still returns it.
    if FLAGS.output_dir:
        _save(model, pairs, measured, chosen)
    if FLAGS.grid:
        _grid(model, pairs, reference, chosen, FLAGS.grid)
    return 0


def _save(model, pairs, measured, chosen):
    provenance = {}
    if FLAGS.provenance:
        with open(FLAGS.provenance, encoding="utf-8") as f:
            provenance = json.load(f)
    weights = serialization.find_weights(FLAGS.checkpoint_dir)
    if weights is not None:
        provenance.setdefault("checkpoint_step", serialization.saved_step(weights))
        provenance.setdefault("training", _training_facts(os.path.dirname(weights)))
        # Each phase's steps, crop size, precision, machine and hours (training.history).
        provenance.setdefault(
            "history",
            history.until(
                history.read(os.path.dirname(weights)), provenance["checkpoint_step"] or 0
            ),
        )
    provenance["quantization_error"] = {
        "pairs": len(pairs),
        "size": FLAGS.size,
        "by_int8_min_params": measured,
    }
    manifest = release.save(
        model,
        FLAGS.output_dir,
        vgg_file=FLAGS.vgg_file,
        copy_vgg=FLAGS.copy_vgg,
        provenance=provenance,
        int8_min_params=chosen,
    )
    sizes = ", ".join(f"{s['file']} {s['bytes'] / 1e6:.1f} MB" for s in manifest["shards"])
    print(f"Release {FLAGS.output_dir}: int8_min_params={chosen}; {sizes}", flush=True)


if __name__ == "__main__":
    app.run(main)
