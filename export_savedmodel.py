"""Exports a trained (or, for demos, untrained) model as a SavedModel for any image size.

  python export_savedmodel.py --export_dir=export/efanet     # the pretrained release
  python export_savedmodel.py --checkpoint_dir=runs/efanet --export_dir=export/efanet
  python export_savedmodel.py --checkpoint_dir=runs/efanet/latest.weights.h5 --export_dir=...
  python export_savedmodel.py --random_init --export_dir=/tmp/demo --tflite
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from exchange_st import export, release  # noqa: E402

_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir", None,
    "Training model_dir (its latest.weights.h5), a .weights.h5 file, a release directory "
    "or a legacy TF checkpoint prefix like model_dir/ckpt-1000. The architecture comes "
    "from the config saved next to the weights (legacy: model_dir/config.json). Unset "
    "(and no --random_init): the pretrained release ($EXCHANGE_ST_PRETRAINED or "
    "pretrained/efanet/).",
)
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Output SavedModel directory.", required=True)
_RANDOM_INIT = flags.DEFINE_boolean(
    "random_init", False, "Export an untrained model (demos and tests) instead of a checkpoint."
)
_VGG_WEIGHTS = flags.DEFINE_string(
    "vgg_weights", None,
    "VGG weights of the --random_init model: imagenet or the path of "
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (unset: random). A checkpoint "
    "holds its own.",
)
_SEED = flags.DEFINE_integer("seed", None, "Weight-init seed of the --random_init model.")
_TFLITE = flags.DEFINE_boolean(
    "tflite", False, "Also try converting to export_dir/model.tflite (reports why if it cannot)."
)
_TFLITE_SIZE = flags.DEFINE_integer(
    "tflite_size", 512,
    "Input side of the fixed-size TFLite model written when no any-size conversion runs.",
)
_MODEL_CONFIG = flags.DEFINE_string(
    "model_config", None,
    "JSON dict of ExchangeStyleTransfer arguments for --random_init (e.g. "
    '\'{"upsample_filters": [64, 32, 16]}\'), or for a legacy TF checkpoint whose model_dir '
    "holds no config.json. A training run's weights carry their own config.",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        model_config = json.loads(_MODEL_CONFIG.value) if _MODEL_CONFIG.value else {}
    except json.JSONDecodeError as e:
        raise app.UsageError(f"--model_config is not valid JSON: {e}") from e
    try:
        config = export.ExportConfig(
            export_dir=_EXPORT_DIR.value,
            checkpoint_dir=_CHECKPOINT_DIR.value,
            random_init=_RANDOM_INIT.value,
            vgg_weights=_VGG_WEIGHTS.value,
            model_config=model_config,
            tflite=_TFLITE.value,
            tflite_size=_TFLITE_SIZE.value,
            seed=_SEED.value,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e
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
    return 0


if __name__ == "__main__":
    app.run(main)
