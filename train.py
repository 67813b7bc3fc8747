"""Trains the exchangeable-feature style transfer network (or a baseline) with `fit`.

    python train.py --flagfile=configs/smoke.cfg   # minute-long CPU smoke run
    python train.py --flagfile=configs/paper.cfg   # the paper's setting
    KERAS_BACKEND=jax python train.py --flagfile=configs/smoke.cfg  # JAX, no TF needed

Rerunning the same command resumes from the latest state in --model_dir.
Image files that cannot be read are skipped and listed (--noskip_unreadable
refuses them). Exit status: 1 when the run cannot start (flags or inputs,
named in one line), 0 otherwise.
"""

import sys
import time

# --max_seconds counts from here.
_START = time.monotonic()

from exchange_st import console  # noqa: E402

# Before anything imports TensorFlow: its native start-up lines stay hidden.
console.quiet_startup()

from absl import app, flags, logging  # noqa: E402

from exchange_st.data import sources  # noqa: E402
from exchange_st.nn import decoder, losses  # noqa: E402
from exchange_st.nn import model_options  # noqa: E402
from exchange_st.training import optim, train_config, train_lib, warm_start  # noqa: E402

_VGG_CHOICES = "'imagenet' (Keras download), a notop .h5 path, or 'none' (random, smoke only)"

FLAGS = flags.FLAGS
# Data (Sec. 3.5).
flags.DEFINE_string(
    "content_source",
    None,
    "Content images: a directory, 'tfds:<name>[:<split>]' (paper: tfds:places365_small) "
    "or 'builtin' (procedural, no files).",
)
flags.DEFINE_string(
    "style_source",
    None,
    "Style images: a directory (paper: WikiArt), 'tfds:<name>[:<split>]' or 'builtin'.",
)
flags.DEFINE_integer(
    "resize_short_side", 512, "Smaller image side is resized to this before cropping."
)
flags.DEFINE_integer("crop_size", 256, "Side of the random square training crops.")
flags.DEFINE_integer("batch_size", 4, "Global batch size (pairs per step), split across replicas.")
flags.DEFINE_integer("shuffle_buffer", 1000, "Shuffle buffer size of TFDS sources.")
flags.DEFINE_boolean(
    "validate_files", True, "Check every directory image with PIL before training."
)
flags.DEFINE_boolean(
    "skip_unreadable",
    True,
    "Skip and list the image files that cannot be read; --noskip_unreadable refuses the "
    "directory instead (README, 'Unreadable inputs').",
)
flags.DEFINE_enum(
    "data_pipeline",
    "auto",
    list(sources.PIPELINES),
    "Input pipeline: tf (tf.data), py (keras PyDataset, PIL + NumPy, no TensorFlow), "
    "auto (tf.data on the TensorFlow backend, else py).",
)
flags.DEFINE_integer("data_workers", 1, "PyDataset pipeline: worker threads (or processes).")
flags.DEFINE_boolean(
    "data_multiprocessing", False, "PyDataset pipeline: workers are processes, not threads."
)
# Model.
flags.DEFINE_enum(
    "model",
    "efanet",
    sorted(train_config.MODELS),
    "Network: 'efanet' (this paper) or 'adain' (the AdaIN baseline).",
)
flags.DEFINE_integer("num_exchange_blocks", 3, "Feature Exchange blocks, 0-3 (ablation: 0).")
flags.DEFINE_boolean(
    "share_exchange_block", False, "Iterate one shared Feature Exchange block (ablation)."
)
flags.DEFINE_enum(
    "fusion_mode", "ours", list(decoder.FUSION_MODES), "Content-style fusion (Fig. 8 ablation)."
)
flags.DEFINE_list(
    "compressor_filters",
    ["32", "64", "128", "128", "64"],
    "Conv widths of the covariance compressor.",
)
flags.DEFINE_integer("code_dim", 256, "Size of the style codes f_c, f_s, f_com, f_uni.")
flags.DEFINE_integer("num_pre_fusion_blocks", 3, "Decoder residual blocks before fusion.")
flags.DEFINE_integer("num_post_fusion_blocks", 2, "Decoder residual blocks after fusion.")
flags.DEFINE_list(
    "upsample_filters", ["256", "128", "64"], "Widths of the decoder upsampling stages."
)
flags.DEFINE_enum(
    "initialization",
    "scaled",
    list(model_options.INITIALIZATIONS),
    "Decoder/style-head initialisation: scaled, scaled_kernels, scaled_zero_heads "
    "(docs/experiments/trainability.md), equalized (docs/experiments/style_conditioning.md) "
    "or keras. The heads' part shapes Eq. 1-2's v_c, v_r only (--fusion_mode=ours).",
)
flags.DEFINE_integer(
    "fusion_rank", 1, "Projections k of Eq. 1-2: 1 is the paper; k > 1 its conclusion's option."
)
flags.DEFINE_multi_string(
    "model_config",
    [],
    "Any other constructor argument of the model, as key=value (repeatable; values are "
    "read as JSON where they parse), e.g. --model_config=code_normalization=l2 "
    "--model_config=compressor_initializer=he_normal. The model checks them.",
)
flags.DEFINE_string("vgg_weights", "imagenet", f"VGG-19 encoder weights: {_VGG_CHOICES}.")
# Objective (Eq. 7); a weight of 0 switches a term off (Fig. 7 ablation).
flags.DEFINE_float("content_weight", 1.0, "lambda_pc of Eq. 7 (content perceptual loss).")
flags.DEFINE_float("style_weight", 2.0, "lambda_ps of Eq. 7 (style perceptual loss).")
flags.DEFINE_float("rec_weight", 5.0, "lambda_rec of Eq. 7 (L1 reconstruction).")
flags.DEFINE_float("com_weight", 7.0, "lambda_com of Eq. 7 (feature exchange loss).")
flags.DEFINE_enum(
    "orthogonality",
    "abs",
    list(losses.ORTHOGONALITY_MODES),
    "Form of the f_com . f_uni terms of Eq. 6: abs, square or raw (unbounded).",
)
flags.DEFINE_enum(
    "perceptual_norm",
    "squared",
    list(losses.PERCEPTUAL_NORMS),
    "Reduction of the norm of Eq. 3-4: squared (mean squared error) or rms (its root).",
)
flags.DEFINE_enum(
    "exchange_targets",
    "trainable",
    list(losses.EXCHANGE_TARGETS),
    "Whether the codes f_c, f_s of Eq. 6's reconstruction terms take its gradient "
    "(trainable, as written), are fixed targets (stop-gradient), or Eq. 6 does not "
    "train the compressor at all (detached).",
)
flags.DEFINE_enum(
    "reconstruction_space",
    "rgb",
    list(losses.RECONSTRUCTION_SPACES),
    "Colour basis of Eq. 5's L1: rgb (as written) or opponent (grey and two "
    "colour-opponent axes, so grey errors do not hide hue errors; beyond the paper).",
)
flags.DEFINE_float(
    "adain_style_weight", 10.0, "Style weight of the AdaIN baseline (--model=adain)."
)
# Optimisation.
flags.DEFINE_float("lr", 1e-4, "Adam learning rate (default betas), reached after the warm-up.")
flags.DEFINE_integer(
    "warmup_steps", optim.DEFAULT_WARMUP_STEPS, "Steps of the linear learning-rate warm-up."
)
flags.DEFINE_float(
    "eq7_lr",
    None,
    "Beyond the paper (default: --lr throughout): Adam's learning rate once Eq. 7 trains, "
    "after --rec_only_steps (docs/experiments/cpu_preview.md).",
)
flags.DEFINE_integer(
    "rec_only_steps",
    0,
    "Beyond the paper (0: Eq. 7 from the start): the first N steps train Eq. 5 alone, so the "
    "decoder learns to read each image's statistics from its own v_r first; Adam restarts, "
    "with its warm-up, when Eq. 7 begins (efanet only; docs/experiments/style_conditioning.md).",
)
flags.DEFINE_integer("steps", 350_000, "Total training steps; a resumed run continues up to it.")
flags.DEFINE_integer("seed", None, "Seed of weight init and data (default: random).")
flags.DEFINE_enum(
    "mixed_precision",
    "none",
    list(train_config.MIXED_PRECISION_MODES),
    "Keras dtype policy; mixed_float16 adds dynamic loss scaling.",
)
flags.DEFINE_boolean(
    "jit_compile", False, "XLA-compile the train step on TensorFlow (JAX always compiles)."
)
flags.DEFINE_float(
    "max_seconds",
    None,
    "Stop cleanly, with the weights saved, before this many seconds since the start.",
)
# Output.
flags.DEFINE_string(
    "model_dir", None, "Directory of latest.weights.h5, config.json, the CSV log and summaries."
)
flags.DEFINE_integer("log_every", 100, "Steps per console line and CSV row (fit epoch).")
flags.DEFINE_integer("summary_every", 100, "Steps between TensorBoard scalars (with TF).")
flags.DEFINE_integer("image_every", 1000, "Steps between image grids (PNG; TensorBoard with TF).")
flags.DEFINE_integer("checkpoint_every", 1000, "Steps between saves of latest.weights.h5.")
flags.DEFINE_float(
    "save_every_seconds", None, "Also save when this many seconds passed since the last save."
)
flags.DEFINE_integer(
    "keep_checkpoints", 5, "States kept: 1 = latest only; K = also ckpt-<step> links to the last K."
)
flags.DEFINE_string(
    "init_from",
    None,
    "Start a fresh --model_dir from a trained model: a release directory (e.g. "
    "pretrained/efanet), a training model_dir or a .weights.h5 file. Its weights and step "
    "carry on, Adam starts fresh with its warm-up, its training history continues. A "
    "--model_dir with a checkpoint resumes that instead.",
)
flags.DEFINE_enum(
    "init_training_parts",
    "copy",
    ["copy", "fresh"],
    "--init_from a release, which stores only the inference path: the second decoder "
    "(I_c->s, I_s->s) starts as a copy of the first, or fresh.",
)
flags.DEFINE_string(
    "eval_content_dir",
    None,
    "Evaluation content images (never the training ones): with --eval_style_dir, the run "
    "reports how far its pictures follow the content and the style every --eval_every steps "
    "(model_dir/eval_log.csv, images/eval-<step>.png).",
)
flags.DEFINE_string("eval_style_dir", None, "Evaluation style images (see --eval_content_dir).")
flags.DEFINE_integer("eval_every", 1000, "Steps between evaluation reports.")
flags.DEFINE_integer("eval_size", 256, "Side of the evaluation images (centre crops).")
flags.DEFINE_integer("eval_pairs", 4, "Evaluation pairs (content i with style i), >= 2.")
flags.DEFINE_integer(
    "eval_styles",
    20,
    "Styles under which the first evaluation content measures the style dependence and the "
    "colour follow (0: not measured).",
)
flags.DEFINE_boolean(
    "verbose",
    False,
    "Also show TensorFlow's own start-up lines, absl's log format (level, time, file:line) "
    "and fit's own line per epoch, hidden by default.",
)

flags.mark_flags_as_required(["content_source", "style_source", "model_dir"])


def _ints(values):
    return tuple(int(v) for v in values)


def config_from_flags() -> train_config.TrainConfig:
    """Converts the parsed flags into a `TrainConfig`."""
    vgg_weights = None if FLAGS.vgg_weights.lower() == "none" else FLAGS.vgg_weights
    return train_config.TrainConfig(
        data=sources.DataConfig(
            content_source=FLAGS.content_source,
            style_source=FLAGS.style_source,
            resize_short_side=FLAGS.resize_short_side,
            crop_size=FLAGS.crop_size,
            batch_size=FLAGS.batch_size,
            shuffle_buffer=FLAGS.shuffle_buffer,
            validate_files=FLAGS.validate_files,
            skip_unreadable=FLAGS.skip_unreadable,
            pipeline=FLAGS.data_pipeline,
            workers=FLAGS.data_workers,
            use_multiprocessing=FLAGS.data_multiprocessing,
        ),
        model_dir=FLAGS.model_dir,
        loss=losses.LossConfig(
            content_weight=FLAGS.content_weight,
            style_weight=FLAGS.style_weight,
            rec_weight=FLAGS.rec_weight,
            com_weight=FLAGS.com_weight,
            orthogonality=FLAGS.orthogonality,
            perceptual_norm=FLAGS.perceptual_norm,
            exchange_targets=FLAGS.exchange_targets,
            reconstruction_space=FLAGS.reconstruction_space,
        ),
        model=FLAGS.model,
        num_exchange_blocks=FLAGS.num_exchange_blocks,
        share_exchange_block=FLAGS.share_exchange_block,
        fusion_mode=FLAGS.fusion_mode,
        compressor_filters=_ints(FLAGS.compressor_filters),
        code_dim=FLAGS.code_dim,
        num_pre_fusion_blocks=FLAGS.num_pre_fusion_blocks,
        num_post_fusion_blocks=FLAGS.num_post_fusion_blocks,
        upsample_filters=_ints(FLAGS.upsample_filters),
        initialization=FLAGS.initialization,
        fusion_rank=FLAGS.fusion_rank,
        model_config=console.parse_options(FLAGS.model_config),
        adain_style_weight=FLAGS.adain_style_weight,
        vgg_weights=vgg_weights,
        lr=FLAGS.lr,
        warmup_steps=FLAGS.warmup_steps,
        eq7_lr=FLAGS.eq7_lr,
        rec_only_steps=FLAGS.rec_only_steps,
        steps=FLAGS.steps,
        seed=FLAGS.seed,
        log_every=FLAGS.log_every,
        summary_every=FLAGS.summary_every,
        image_every=FLAGS.image_every,
        checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        save_every_seconds=FLAGS.save_every_seconds,
        max_seconds=FLAGS.max_seconds,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        verbose=2 if FLAGS.verbose else 0,
        eval_content_source=FLAGS.eval_content_dir,
        eval_style_source=FLAGS.eval_style_dir,
        eval_every=FLAGS.eval_every,
        eval_size=FLAGS.eval_size,
        eval_pairs=FLAGS.eval_pairs,
        eval_styles=FLAGS.eval_styles,
        init_from=FLAGS.init_from,
        init_training_parts=FLAGS.init_training_parts,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unknown arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    console.plain_logging(FLAGS.verbose)
    try:
        config = config_from_flags()
        sources.check_sources(config.data)
        if config.init_from:
            warm_start.check(config.init_from)
    except (OSError, ValueError) as e:
        # Missing, empty or unreadable inputs and bad settings: one clear line.
        print(f"train.py: error: {e}", file=sys.stderr)
        return 1
    train_lib.train(config, start_time=_START)
    return 0


if __name__ == "__main__":
    app.run(main)
