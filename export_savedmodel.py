"""Exports a trained (or, for demos, untrained) model as a SavedModel for any image size.

  python export_savedmodel.py --checkpoint_dir=runs/efanet --export_dir=export/efanet
  python export_savedmodel.py --random_init --export_dir=/tmp/demo --tflite
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from exchange_st import export  # noqa: E402

_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir", None,
    "Training model_dir (its latest checkpoint is used) or a checkpoint prefix like "
    "model_dir/ckpt-1000. The model hyperparameters come from model_dir/config.json.",
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
# Used for --random_init, and for --checkpoint_dir only without a config.json.
_CODE_DIM = flags.DEFINE_integer("code_dim", 256, "Size of the style codes (model config).")
_NUM_EXCHANGE_BLOCKS = flags.DEFINE_integer(
    "num_exchange_blocks", 3, "Feature Exchange blocks (model config)."
)
_SHARE_EXCHANGE_BLOCK = flags.DEFINE_boolean(
    "share_exchange_block", False, "Iterate one shared exchange block (model config)."
)
_COMPRESSOR_FILTERS = flags.DEFINE_list(
    "compressor_filters", ["32", "64", "128", "128", "64"],
    "Conv widths of the covariance compressor (model config).",
)
_FUSION_MODE = flags.DEFINE_enum(
    "fusion_mode", "ours", ["ours", "adain", "concat"], "Style-content fusion (model config)."
)
_NUM_PRE_FUSION_BLOCKS = flags.DEFINE_integer(
    "num_pre_fusion_blocks", 3, "Decoder residual blocks before fusion (model config)."
)
_NUM_POST_FUSION_BLOCKS = flags.DEFINE_integer(
    "num_post_fusion_blocks", 2, "Decoder residual blocks after fusion (model config)."
)
_UPSAMPLE_FILTERS = flags.DEFINE_list(
    "upsample_filters", ["256", "128", "64"], "Decoder upsampling widths (model config)."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    model_config = {
        "code_dim": _CODE_DIM.value,
        "num_exchange_blocks": _NUM_EXCHANGE_BLOCKS.value,
        "share_exchange_block": _SHARE_EXCHANGE_BLOCK.value,
        "compressor_filters": [int(v) for v in _COMPRESSOR_FILTERS.value],
        "fusion_mode": _FUSION_MODE.value,
        "num_pre_fusion_blocks": _NUM_PRE_FUSION_BLOCKS.value,
        "num_post_fusion_blocks": _NUM_POST_FUSION_BLOCKS.value,
        "upsample_filters": [int(v) for v in _UPSAMPLE_FILTERS.value],
    }
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
    result = export.export_from_config(config)
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
