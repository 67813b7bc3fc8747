r"""Measures a trained EFANet against the release rule (`exchange_st.evaluation.release_rule`).

    python -m tools.release_check --checkpoint=~/runs/cpu_preview \
        --content_dir=../shared/images/content --style_dir=../shared/images/style \
        --vgg_weights=../shared/weights/vgg19_to_relu4_1_float16.h5 \
        --output=/tmp/release_check/check.json

Stylizes every evaluation content with every evaluation style at 512 px
(`style_matrix`: the style move between la_muse and sketch, the luminance
correlation, the chroma follow), measures `v_r_s`'s spread across the styles
at 256 px (`style_dependence`), and runs eval.py's Table 1 with its content
row on every pair at 256 px. Prints each check and the verdict; writes the
numbers, the verdict and the rule to `--output` (JSON; `tools.make_release
--provenance` records it in the manifest), Table 1's results.json beside it,
and the 512 px matrix as a picture (`--grid`). Compare with the shipped
release: `--shipped=pretrained/efanet` says whether the candidate replaces it.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from exchange_st.data import image_io  # noqa: E402
from exchange_st.evaluation import (  # noqa: E402
    eval_config,
    eval_lib,
    release_rule,
    style_dependence,
    style_matrix,
)
from exchange_st.saving import loader, release, serialization  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "checkpoint", None, "train.py model_dir, .weights.h5 file or release directory.", required=True
)
flags.DEFINE_string("content_dir", None, "Evaluation content images.", required=True)
flags.DEFINE_string("style_dir", None, "Evaluation style images.", required=True)
flags.DEFINE_string(
    "vgg_weights",
    "imagenet",
    "VGG-19 of Table 1's metric: 'imagenet', an h5 path, or 'none' (random: tests only).",
)
flags.DEFINE_string("output", None, "JSON file of the numbers and the verdict.", required=True)
flags.DEFINE_string("grid", None, "Picture of the 512 px matrix (optional).")
flags.DEFINE_integer("rule_size", 512, "Side of the style move and content correlation.")
flags.DEFINE_integer("table1_size", 256, "Side of Table 1.")
flags.DEFINE_integer("dependence_size", 256, "Side of the v_r_s spread.")
flags.DEFINE_string("style_a", "la_muse", "First style of the style move (file name stem).")
flags.DEFINE_string("style_b", "sketch", "Second style of the style move (file name stem).")
flags.DEFINE_string("shipped", None, "A shipped release to compare with (its manifest's scores).")
flags.DEFINE_boolean(
    "record",
    False,
    "When --checkpoint is a release: record the scores, the verdict and the rule in its "
    "manifest's provenance and its model card.",
)


def _load(directory, size):
    paths = image_io.list_images(directory)
    return paths, np.stack([image_io.load_square(p, size) for p in paths])


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def measure(model) -> dict:
    """Every score of the rule, with the times each part took."""
    start = time.monotonic()
    content_paths, contents = _load(FLAGS.content_dir, FLAGS.rule_size)
    style_paths, styles = _load(FLAGS.style_dir, FLAGS.rule_size)
    names = [_stem(p) for p in style_paths]
    matrix = style_matrix.stylize_matrix(model, contents, styles)
    scores = style_matrix.matrix_scores(
        model.encoder, matrix, contents, styles, names, FLAGS.style_a, FLAGS.style_b
    )
    scores["seconds_matrix"] = time.monotonic() - start
    if FLAGS.grid:
        rows = [[np.ones_like(styles[0])] + list(styles)]
        rows += [[c] + list(row) for c, row in zip(contents, matrix)]
        image_io.save_image(FLAGS.grid, image_io.make_grid(rows, pad=2, height=128))
    size = FLAGS.dependence_size
    dependence = np.stack([image_io.load_square(p, size) for p in style_paths])
    report = style_dependence.style_dependence(
        model, image_io.load_square(content_paths[0], size), dependence
    )
    scores["v_r_spread"] = report[style_dependence.KEY_STAGE]["ratio"]
    start = time.monotonic()
    vgg_weights = None if FLAGS.vgg_weights.lower() == "none" else FLAGS.vgg_weights
    table_dir = os.path.join(os.path.dirname(os.path.abspath(FLAGS.output)), "table1")
    cfg = eval_config.EvalConfig(
        content_dir=FLAGS.content_dir,
        style_dir=FLAGS.style_dir,
        output_dir=table_dir,
        methods=("content", f"efanet={FLAGS.checkpoint}"),
        vgg_weights=vgg_weights,
        size=FLAGS.table1_size,
        pairs=0,
        timing_sizes=(),
        grid_rows=4,
    )
    table = eval_lib.run(cfg)
    metrics = {name: info["metrics"] for name, info in table["methods"].items()}
    scores["table1_pairs"] = table["num_pairs"]
    scores["table1_style"] = metrics["efanet"]["style"]["mean"]
    scores["table1_content"] = metrics["efanet"]["content"]["mean"]
    scores["table1_total"] = metrics["efanet"]["total"]["mean"]
    scores["content_row_style"] = metrics["content"]["style"]["mean"]
    scores["seconds_table1"] = time.monotonic() - start
    print(table["table"], flush=True)
    return scores


def main(argv):
    del argv
    model = loader.load(FLAGS.checkpoint)
    weights = serialization.find_weights(FLAGS.checkpoint)
    scores = measure(model)
    passes, failures = release_rule.verdict(scores)
    result = {
        "checkpoint": FLAGS.checkpoint,
        "step": serialization.saved_step(weights) if weights else None,
        "rule": release_rule.RULE,
        "passes": passes,
        "failures": failures,
        "scores": scores,
    }
    if FLAGS.shipped:
        # make_release --provenance=<this file> puts these scores in the manifest.
        shipped = release.read_manifest(FLAGS.shipped)["provenance"].get("scores")
        result["replaces_shipped"] = release_rule.replaces(scores, shipped)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    follow = scores.get("chroma_follow", {})
    print(
        f"v_r_s spread {scores['v_r_spread']:.1%}, style move {scores.get('style_move', float('nan')):.3f}, "
        f"content corr {scores['content_corr']:.2f}, chroma follow {follow.get('slope', float('nan')):.2f} "
        f"(r {follow.get('r', float('nan')):.2f}), Table 1 style {scores['table1_style']:.4g} vs "
        f"the content's {scores['content_row_style']:.4g}, total {scores['table1_total']:.4g}",
        flush=True,
    )
    print("PASSES the release rule" if passes else "FAILS: " + "; ".join(failures), flush=True)
    if FLAGS.record and release.is_release(FLAGS.checkpoint):
        facts = {k: result[k] for k in ("rule", "passes", "failures", "scores")}
        release.add_provenance(FLAGS.checkpoint, facts)
        print(f"recorded in {FLAGS.checkpoint}/manifest.json and its model card", flush=True)
    if "replaces_shipped" in result:
        print(f"replaces the shipped release: {result['replaces_shipped']}", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
