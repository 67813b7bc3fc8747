"""The `exchange-st-stylize` command: stylize image files, folders and videos.

Usage:
  exchange-st-stylize --content=photo.jpg --style=art.jpg --output_dir=out/  # pretrained
  exchange-st-stylize --saved_model=export/ --content=photos/ \\
      --style=starry.jpg,scream.jpg --output_dir=out/
  python -m exchange_st.inference.stylize --checkpoint_dir=model_dir/ --content=cat.jpg \\
      --style=wave.jpg --alpha=0,0.25,0.5,0.75,1 --output_dir=out/   # Fig. 9 strip
  exchange-st-stylize --saved_model=export/ --content=cat.jpg \\
      --style=a.jpg,b.jpg --mask=left.png,right.png --output_dir=out/  # Fig. 10
  exchange-st-stylize --saved_model=export/ --video=in.mp4 --style=wave.jpg \\
      --max_size=512 --output_dir=out/                                  # Fig. 11
  exchange-st-stylize --checkpoint_dir=runs/efanet --content=photo.jpg \\
      --style=a.jpg,b.jpg --style_weights=0.7,0.3 --max_size=0 --output_dir=out/

An input that cannot be read (empty, not an image, damaged, too large) is
skipped, named with what is wrong, and listed at the end; the exit status is
1 when any input failed (an output asked for is missing), 0 otherwise.
`--noskip_unreadable` stylizes nothing unless every input can be read.

The absl flags are defined by `run()` (the console-script entry point) and
turned into a `StylizeConfig`; the library (`stylizer_lib.Stylizer`,
`stylize_job.stylize_all`) reads no flags, and importing this module defines
none: absl flags live in the scripts, and this module is the package's
console script.
"""

from __future__ import annotations

import sys

from exchange_st import console

# Before anything imports TensorFlow: its native start-up lines stay hidden.
console.quiet_startup()

from absl import app, flags, logging  # noqa: E402

from exchange_st.inference import stylizer as stylizer_lib  # noqa: E402
from exchange_st.inference import video as video_lib  # noqa: E402
from exchange_st.inference.stylize_job import (  # noqa: E402
    StylizeConfig,
    stylize_all,
)


FLAGS = flags.FLAGS


def _define_flags():
    """Defines the command's flags on absl's global FLAGS (once)."""
    if "style" in FLAGS:
        return
    # Owned by the running program, as if defined in its main module: absl's
    # --help lists only the main module's flags, and for the console script
    # that is the generated wrapper, not this module.
    owner = sys.argv[0]
    flags.DEFINE_string(
        "content", None, "Content image file or directory of images.", module_name=owner
    )
    flags.DEFINE_list("style", None, "Style image file(s), comma-separated.", module_name=owner)
    flags.DEFINE_list(
        "alpha",
        ["1.0"],
        "Content/style trade-off of Eq. 8 in [0, 1], or a comma-separated list: then "
        "one output per alpha plus a strip image (Fig. 9).",
        module_name=owner,
    )
    flags.DEFINE_list(
        "mask",
        None,
        "Spatial control (Fig. 10): one mask image per --style, comma-separated; each is "
        "resized to the content and pixels > 0.5 get that style.",
        module_name=owner,
    )
    flags.DEFINE_list(
        "style_weights",
        None,
        "One weight per --style: interpolate the styles (their fused features R_fusion "
        "averaged with the normalised weights, as Eq. 8 blends) into one output; with "
        "--mask, each region's weight.",
        module_name=owner,
    )
    flags.DEFINE_enum(
        "precision",
        "float32",
        list(stylizer_lib.PRECISIONS),
        "Computation precision for --checkpoint_dir / --random_init models (bfloat16: "
        "faster on CPUs with bfloat16 instructions; weights stay float32).",
        module_name=owner,
    )
    flags.DEFINE_integer(
        "tile_size",
        0,
        "0: content above the memory budget (half the available RAM) is stylized in "
        "1024 px tiles (exchange_st.inference.tiling); N: tile content longer than N px in N px tiles.",
        module_name=owner,
    )
    flags.DEFINE_boolean(
        "preserve_color",
        False,
        "Keep the content's colours: stylized luminance with the content's chroma (YUV).",
        module_name=owner,
    )
    flags.DEFINE_integer(
        "max_size",
        1024,
        "Bound of the longer side of every input, in pixels (0: full resolution; large "
        "content then runs tiled, see --tile_size).",
        module_name=owner,
    )
    flags.DEFINE_integer(
        "style_size",
        768,
        "Bound of the longer side of each style image, in pixels (0: the content's "
        "--max_size); 768 is the scale the paper trains styles at (see docs/design.md).",
        module_name=owner,
    )
    flags.DEFINE_string("output_dir", None, "Output directory.", module_name=owner)
    flags.DEFINE_string(
        "video",
        None,
        "Video file (needs imageio-ffmpeg) or directory of frames, stylized frame by "
        "frame (Fig. 11).",
        module_name=owner,
    )
    flags.DEFINE_enum(
        "video_format",
        "auto",
        list(video_lib.VIDEO_FORMATS),
        "Video output: mp4 (needs imageio-ffmpeg), frames (PNG sequence), or auto "
        "(mp4 when possible).",
        module_name=owner,
    )
    flags.DEFINE_integer(
        "max_frames", None, "Stylize only the first N video frames.", module_name=owner
    )
    flags.DEFINE_string(
        "saved_model",
        None,
        "SavedModel directory written by export_savedmodel.py. With no model flag the "
        "pretrained release is used ($EXCHANGE_ST_PRETRAINED or pretrained/efanet/).",
        module_name=owner,
    )
    flags.DEFINE_string(
        "checkpoint_dir",
        None,
        "Training model_dir, a .weights.h5 file (its .config.json next to it) or a "
        "legacy TF checkpoint prefix.",
        module_name=owner,
    )
    flags.DEFINE_boolean(
        "random_init", False, "Use an untrained model (demos and tests only).", module_name=owner
    )
    flags.DEFINE_enum(
        "model",
        "efanet",
        ["efanet", "adain"],
        "Which pretrained model to use when no --checkpoint_dir or --saved_model is given "
        "(pretrained/efanet or pretrained/adain), and the family of a --random_init model.",
        module_name=owner,
    )
    flags.DEFINE_boolean(
        "skip_unreadable",
        True,
        "Skip, name and list at the end the inputs that cannot be read; "
        "--noskip_unreadable stylizes nothing when any of them cannot be read.",
        module_name=owner,
    )
    flags.DEFINE_string(
        "vgg_weights",
        None,
        "VGG weights of the --random_init model: imagenet or the path of "
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (unset: random).",
        module_name=owner,
    )
    flags.DEFINE_multi_string(
        "model_config",
        [],
        "Constructor arguments of the model for --random_init, or for a legacy TF checkpoint "
        "whose model_dir holds no config.json, as key=value (repeatable; values are read as "
        "JSON where they parse). Weights files carry their own config.",
        module_name=owner,
    )
    flags.DEFINE_boolean(
        "verbose",
        False,
        "Also show TensorFlow's own start-up lines (oneDNN, CUDA probing) and absl's log "
        "format (level, time, file:line), hidden by default.",
        module_name=owner,
    )
    flags.mark_flags_as_required(["style", "output_dir"])


def config_from_flags() -> StylizeConfig:
    """Turns the parsed flags into a `StylizeConfig` (raises `app.UsageError`)."""
    try:
        alphas = [float(a) for a in FLAGS.alpha]
        weights = [float(w) for w in FLAGS.style_weights] if FLAGS.style_weights else None
    except ValueError as e:
        raise app.UsageError(f"--alpha and --style_weights take floats: {e}") from e
    try:
        model_config = console.parse_options(FLAGS.model_config)
    except ValueError as e:
        raise app.UsageError(f"--model_config: {e}") from e
    vgg_weights = FLAGS.vgg_weights
    if vgg_weights and vgg_weights.lower() == "none":
        vgg_weights = None
    try:
        return StylizeConfig(
            content=FLAGS.content,
            styles=list(FLAGS.style),
            output_dir=FLAGS.output_dir,
            alphas=alphas,
            masks=list(FLAGS.mask) if FLAGS.mask else None,
            style_weights=weights,
            preserve_color=FLAGS.preserve_color,
            max_size=FLAGS.max_size if FLAGS.max_size and FLAGS.max_size > 0 else None,
            style_size=FLAGS.style_size if FLAGS.style_size and FLAGS.style_size > 0 else None,
            tile_size=FLAGS.tile_size,
            precision=FLAGS.precision,
            video=FLAGS.video,
            video_format=FLAGS.video_format,
            max_frames=FLAGS.max_frames,
            saved_model=FLAGS.saved_model,
            checkpoint_dir=FLAGS.checkpoint_dir,
            random_init=FLAGS.random_init,
            model=FLAGS.model,
            vgg_weights=vgg_weights,
            model_config=model_config,
            skip_unreadable=FLAGS.skip_unreadable,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unknown arguments: {argv[1:]}")
    console.plain_logging(FLAGS.verbose)
    config = config_from_flags()
    try:
        report = stylize_all(config)
    except (OSError, ValueError) as e:
        # A model that cannot be loaded or used: one line, no traceback.
        print(f"exchange-st-stylize: error: {e}", file=sys.stderr)
        return 1
    logging.info(
        "Wrote %d output(s) to %s in %.1f s.",
        len(report.outputs),
        config.output_dir,
        report.seconds,
    )
    if report.failures:
        logging.error(
            "%d input(s) failed: %s",
            len(report.failures),
            ", ".join(path for path, _ in report.failures),
        )
        return 1
    return 0


def run(argv=None):
    """Console-script entry point (`exchange-st-stylize`)."""
    _define_flags()
    app.run(main, argv=argv if argv is not None else sys.argv)


if __name__ == "__main__":
    run()
