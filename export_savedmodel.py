"""Exports a trained (or, for demos, untrained) model as a SavedModel for any image size.

python export_savedmodel.py --export_dir=export/efanet     # the pretrained release
python export_savedmodel.py --checkpoint_dir=runs/efanet --export_dir=export/efanet
python export_savedmodel.py --checkpoint_dir=runs/efanet/latest.weights.h5 --export_dir=...
python export_savedmodel.py --random_init --export_dir=/tmp/demo --tflite
python export_savedmodel.py --export_dir=export/efanet --web   # + export/efanet/web/, a browser page
"""

import os
import sys

from exchange_st import console

# Before anything imports TensorFlow: its native start-up lines stay hidden.
console.quiet_startup()

from absl import app, flags, logging  # noqa: E402

from exchange_st.saving import export, release  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "checkpoint_dir",
    None,
    "Training model_dir (its latest.weights.h5), a .weights.h5 file, a release directory "
    "or a legacy TF checkpoint prefix like model_dir/ckpt-1000. The architecture comes "
    "from the config saved next to the weights (legacy: model_dir/config.json). Unset "
    "(and no --random_init): the pretrained release ($EXCHANGE_ST_PRETRAINED or "
    "pretrained/efanet/).",
)
flags.DEFINE_string("export_dir", None, "Output SavedModel directory.")
flags.DEFINE_boolean(
    "random_init", False, "Export an untrained model (demos and tests) instead of a checkpoint."
)
flags.DEFINE_string(
    "vgg_weights",
    None,
    "VGG weights of the --random_init model: imagenet or the path of "
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (unset: random). A checkpoint "
    "holds its own.",
)
flags.DEFINE_integer("seed", None, "Weight-init seed of the --random_init model.")
flags.DEFINE_boolean(
    "tflite", False, "Also try converting to export_dir/model.tflite (reports why if it cannot)."
)
flags.DEFINE_integer(
    "tflite_size",
    512,
    "Input side of the fixed-size TFLite model written when no any-size conversion runs.",
)
flags.DEFINE_boolean(
    "web",
    False,
    "Also build a browser page in export_dir/web: the model as ONNX for ONNX Runtime Web "
    "(checked against the SavedModel) and the page, with its JavaScript vendored from npm. "
    "Serve it with `python -m http.server -d export_dir/web`. Needs the web extra and npm.",
)
flags.DEFINE_enum(
    "web_weights",
    "compact",
    ["compact", "float32"],
    "How the web model stores kernels: compact (int8 where they lie on the release's "
    "grid, else float16) or float32.",
)
flags.DEFINE_multi_string(
    "model_config",
    [],
    "Constructor arguments of the model for --random_init, or for a legacy TF checkpoint "
    "whose model_dir holds no config.json, as key=value (repeatable; values are read as "
    "JSON where they parse), e.g. --model_config=upsample_filters=[64,32,16]. A training "
    "run's weights carry their own config.",
)
flags.DEFINE_boolean(
    "verbose",
    False,
    "Also show TensorFlow's own start-up lines (oneDNN, CUDA probing) and absl's log "
    "format (level, time, file:line), hidden by default.",
)
flags.mark_flags_as_required(["export_dir"])


def config_from_flags() -> export.ExportConfig:
    """Converts the parsed flags into an `ExportConfig` (raises `app.UsageError`)."""
    try:
        model_config = console.parse_options(FLAGS.model_config)
    except ValueError as e:
        raise app.UsageError(f"--model_config: {e}") from e
    vgg_weights = FLAGS.vgg_weights
    if vgg_weights and vgg_weights.lower() == "none":
        vgg_weights = None
    try:
        return export.ExportConfig(
            export_dir=FLAGS.export_dir,
            checkpoint_dir=FLAGS.checkpoint_dir,
            random_init=FLAGS.random_init,
            vgg_weights=vgg_weights,
            model_config=model_config,
            tflite=FLAGS.tflite,
            tflite_size=FLAGS.tflite_size,
            seed=FLAGS.seed,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unknown arguments: {argv[1:]}")
    console.plain_logging(FLAGS.verbose)
    config = config_from_flags()
    try:
        result = export.export_from_config(config)
    except release.NoPretrainedModel as e:
        print(f"export_savedmodel.py: error: {e}", file=sys.stderr)
        return 1
    logging.info("SavedModel: %s", result.export_dir)
    if config.tflite:
        for error in result.tflite_errors:
            logging.info("TFLite variant rejected: %s", error)
        if not result.tflite_path:
            logging.error("No TFLite model could be written (reasons above).")
            return 1
        logging.info("TFLite: %s (%s)", result.tflite_path, result.tflite_variant)
    if FLAGS.web:
        return build_web_page(config, result.export_dir)
    return 0


def build_web_page(config, saved_model_dir):
    from exchange_st.web import build, page

    name = "EFANet, untrained" if config.random_init else build.describe(config.checkpoint_dir)
    web_dir = os.path.join(config.export_dir, "web")
    try:
        built = build.build_web(saved_model_dir, web_dir, name, FLAGS.web_weights, logging.info)
    except (ImportError, page.WebBuildError, build.WebCheckError) as e:
        print(f"export_savedmodel.py: error: {e}", file=sys.stderr)
        return 1
    logging.info(
        "Web page: %s (serve with: python -m http.server -d %s)", built.index_html, web_dir
    )
    return 0


if __name__ == "__main__":
    app.run(main)
