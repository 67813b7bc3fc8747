"""Benchmarks the model, its ablations and the baselines: Table 1 (perceptual loss) and Table 2 (time).

    python eval.py --content_dir=images/content --style_dir=images/style \\
        --efanet_checkpoint=runs/efanet --adain_checkpoint=runs/adain \\
        --vgg_weights=vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \\
        --methods=efanet,adain,gatys,wct,efanet_concat=runs/concat --output_dir=eval_out

Writes results.json and comparison.png to --output_dir and prints the tables.

Exit status: 0 when at least one method ran (the tables mark the others
FAILED, and their reasons are listed at the end); 1 when every requested
method failed, or the images or flags are unusable. Images that cannot be
read are left out and listed at the end (--noskip_unreadable refuses them).
"""

import sys

from exchange_st import console

# Before anything imports TensorFlow: its native start-up lines stay hidden.
console.quiet_startup()

from absl import app, flags  # noqa: E402

from exchange_st.baselines import gatys  # noqa: E402
from exchange_st.evaluation import eval_config, eval_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "methods",
    ["efanet", "adain", "gatys"],
    "Comma list of methods: efanet, adain, gatys, wct, content (the content returned "
    "unchanged: Table 1's floor), and ablations as name=checkpoint_dir "
    "(e.g. efanet_concat=runs/concat, a train.py model_dir).",
)
flags.DEFINE_string(
    "efanet_checkpoint",
    None,
    "train.py model_dir, .weights.h5 file, release directory or legacy checkpoint prefix of "
    "the full model. Unset (with no --efanet_saved_model or --random_init): the pretrained "
    "release ($EXCHANGE_ST_PRETRAINED or pretrained/efanet/).",
)
flags.DEFINE_string(
    "efanet_saved_model",
    None,
    "SavedModel directory from export_savedmodel.py, instead of --efanet_checkpoint.",
)
flags.DEFINE_string(
    "adain_checkpoint",
    None,
    "train.py --model=adain model_dir, .weights.h5 file or legacy checkpoint prefix; WCT uses "
    "its decoder too.",
)
flags.DEFINE_string("content_dir", None, "Directory of content images (searched recursively).")
flags.DEFINE_string("style_dir", None, "Directory of style images (searched recursively).")
flags.DEFINE_integer(
    "pairs", 0, "Number of (content, style) pairs sampled with --seed; 0 = all M x N pairs."
)
flags.DEFINE_integer("seed", 0, "Seed of the pair sampling.")
flags.DEFINE_integer(
    "size",
    512,
    "Evaluation size: the short side of every image is resized to this, then the centre "
    "size x size square is cropped.",
)
flags.DEFINE_string(
    "vgg_weights",
    "imagenet",
    "VGG-19 weights of the metric, of Gatys et al. and of --random_init models: 'imagenet' "
    "(Keras download), a notop .h5 path, or 'none' (random; tests only).",
)
flags.DEFINE_integer(
    "gatys_iterations", 500, "Optimisation steps of Gatys et al. (500 in the paper)."
)
flags.DEFINE_enum(
    "gatys_optimizer",
    "adam",
    list(gatys.OPTIMIZERS),
    "Optimiser of Gatys et al.: adam (one VGG pass per step) or lbfgs (projected, line search).",
)
flags.DEFINE_float(
    "gatys_style_weight", gatys.DEFAULT_STYLE_WEIGHT, "Style weight of Gatys et al.'s objective."
)
flags.DEFINE_float(
    "gatys_lr", None, f"Gatys learning rate / first L-BFGS step (default {gatys.DEFAULT_ADAM_LR})."
)
flags.DEFINE_list(
    "tables",
    ["1", "2"],
    "Which of the paper's tables to produce: 1 (perceptual loss over the pairs), 2 (running "
    "time at --timing_sizes), or both.",
)
flags.DEFINE_list(
    "timing_sizes",
    ["256", "512", "1024"],
    "Square image sizes of the running-time table; empty to skip timing.",
)
flags.DEFINE_integer(
    "timing_runs", 5, "Timed runs per size after one warm-up; the median is reported."
)
flags.DEFINE_integer(
    "gatys_timing_iterations",
    20,
    "Iterations of the timed Gatys run; the time of --gatys_iterations is extrapolated from it.",
)
flags.DEFINE_integer("grid_rows", 6, "Pairs shown in comparison.png (one row each).")
flags.DEFINE_string("output_dir", None, "Directory for results.json and comparison.png.")
flags.DEFINE_boolean(
    "random_init",
    False,
    "Run efanet/adain/wct with untrained weights when no checkpoint is given (tests, demos).",
)
flags.DEFINE_boolean(
    "skip_unreadable",
    True,
    "Leave out and list the images that cannot be read; --noskip_unreadable refuses the "
    "folders instead.",
)

flags.DEFINE_boolean(
    "verbose",
    False,
    "Also show TensorFlow's own start-up lines (oneDNN, CUDA probing) and absl's log "
    "format (level, time, file:line), hidden by default.",
)
flags.mark_flags_as_required(["content_dir", "style_dir", "output_dir"])


def config_from_flags() -> eval_config.EvalConfig:
    """Converts the parsed flags into an `EvalConfig`."""
    vgg = None if FLAGS.vgg_weights.lower() == "none" else FLAGS.vgg_weights
    return eval_config.EvalConfig(
        content_dir=FLAGS.content_dir,
        style_dir=FLAGS.style_dir,
        output_dir=FLAGS.output_dir,
        methods=tuple(FLAGS.methods),
        efanet_checkpoint=FLAGS.efanet_checkpoint,
        efanet_saved_model=FLAGS.efanet_saved_model,
        adain_checkpoint=FLAGS.adain_checkpoint,
        vgg_weights=vgg,
        size=FLAGS.size,
        pairs=FLAGS.pairs,
        seed=FLAGS.seed,
        gatys_iterations=FLAGS.gatys_iterations,
        gatys_optimizer=FLAGS.gatys_optimizer,
        gatys_style_weight=FLAGS.gatys_style_weight,
        gatys_lr=FLAGS.gatys_lr,
        tables=tuple(int(t) for t in FLAGS.tables),
        timing_sizes=tuple(int(s) for s in FLAGS.timing_sizes),
        timing_runs=FLAGS.timing_runs,
        gatys_timing_iterations=FLAGS.gatys_timing_iterations,
        grid_rows=FLAGS.grid_rows,
        random_init=FLAGS.random_init,
        skip_unreadable=FLAGS.skip_unreadable,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unknown arguments: {argv[1:]}")
    console.plain_logging(FLAGS.verbose)
    try:
        config = config_from_flags()
        results = eval_lib.run(config)
    except (OSError, ValueError) as e:
        # Missing/empty directories and unreadable images: one clear line.
        print(f"eval.py: error: {e}", file=sys.stderr)
        return 1
    print(results["table"])
    for reason in results["skipped"]:
        print(f"eval.py: skipped an image that cannot be read: {reason}", file=sys.stderr)
    failed = {n: m["error"] for n, m in results["methods"].items() if m["status"] != "ok"}
    for name, error in failed.items():
        print(f"eval.py: {name} failed: {error}", file=sys.stderr)
    if failed and len(failed) == len(results["methods"]):
        print("eval.py: error: every requested method failed (above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
