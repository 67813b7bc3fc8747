"""The `exchange-st-stylize` command: stylize image files, folders and videos.

Usage:
  exchange-st-stylize --saved_model=export/ --content=photos/ \\
      --style=starry.jpg,scream.jpg --output_dir=out/
  python -m exchange_st.stylize --checkpoint_dir=model_dir/ --content=cat.jpg \\
      --style=wave.jpg --alpha=0,0.25,0.5,0.75,1 --output_dir=out/   # Fig. 9 strip
  exchange-st-stylize --saved_model=export/ --content=cat.jpg \\
      --style=a.jpg,b.jpg --mask=left.png,right.png --output_dir=out/  # Fig. 10
  exchange-st-stylize --saved_model=export/ --video=in.mp4 --style=wave.jpg \\
      --max_size=512 --output_dir=out/                                  # Fig. 11

The absl flags are defined by `run()` (the console-script entry point) and
turned into a `StylizeConfig`; the library part (`Stylizer`, `stylize_all`)
reads no flags, so importing this module defines none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

from exchange_st import image_io
from exchange_st import inference
from exchange_st import video as video_lib
from exchange_st.inference import Stylizer, load_mask, mask_for, preserve_colors  # noqa: F401

# Output images are always PNG (lossless; a JPEG would add block artefacts).
_OUTPUT_EXT = ".png"


@dataclasses.dataclass
class StylizeConfig:
    """What to stylize, how, and with which model.

    Attributes:
      content: an image file or a directory of images (searched recursively;
        outputs keep the sub-directory layout). May be None with `video`.
      styles: style image files; without masks every content image is
        stylized with each style separately.
      output_dir: where results go (created).
      alphas: Eq. 8 trade-offs; more than one also writes a strip image
        `<content>_<style>_alphas.png` (Fig. 9).
      masks: one mask image per style for spatial control (Fig. 10): every
        content image gets all styles at once, style k inside mask k.
      preserve_color: keep the content's colours: the stylized luminance is
        recombined with the content's chroma (YUV).
      max_size: bound of the longer side of every input (memory/time).
      video: a video file or a directory of frames, stylized frame by frame.
      video_format: `"auto"`, `"mp4"` or `"frames"` (see `video.VideoWriter`).
      max_frames: stop the video after this many frames (None: all).
      saved_model: directory of a SavedModel from `export_savedmodel.py`.
      checkpoint_dir: a training model_dir, `.weights.h5` file or legacy
        checkpoint prefix (`checkpoints.load_model`).
      random_init: use an untrained model (demos and tests only).
      vgg_weights: VGG weights of the `random_init` model: `"imagenet"` or an
        h5 path (None: random). Checkpoints and SavedModels hold their own.
      model_config: `ExchangeStyleTransfer` kwargs for `random_init`, or for
        a legacy `checkpoint_dir` without config.json.
    """

    content: str | None
    styles: list[str]
    output_dir: str
    alphas: list[float] = dataclasses.field(default_factory=lambda: [1.0])
    masks: list[str] | None = None
    preserve_color: bool = False
    max_size: int | None = 1024
    video: str | None = None
    video_format: str = "auto"
    max_frames: int | None = None
    saved_model: str | None = None
    checkpoint_dir: str | None = None
    random_init: bool = False
    vgg_weights: str | None = None
    model_config: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        sources = [bool(self.saved_model), bool(self.checkpoint_dir), self.random_init]
        if sum(sources) != 1:
            raise ValueError(
                "Give exactly one model source: saved_model, checkpoint_dir or random_init."
            )
        if not self.content and not self.video:
            raise ValueError("Nothing to stylize: give content (file or directory) and/or video.")
        if not self.styles:
            raise ValueError("Give at least one style image.")
        if not self.alphas:
            raise ValueError("Give at least one alpha.")
        bad = [a for a in self.alphas if not 0.0 <= a <= 1.0]
        if bad:
            raise ValueError(f"alpha must lie in [0, 1] (Eq. 8), got {bad}.")
        if self.masks is not None and len(self.masks) != len(self.styles):
            raise ValueError(
                f"Need one mask per style, got {len(self.masks)} masks for "
                f"{len(self.styles)} styles."
            )
        if self.max_size is not None and self.max_size < 16:
            raise ValueError(f"max_size must be >= 16 (the model's minimum), got {self.max_size}.")
        if self.video_format not in video_lib.VIDEO_FORMATS:
            raise ValueError(
                f"video_format must be one of {video_lib.VIDEO_FORMATS}, got {self.video_format!r}."
            )


@dataclasses.dataclass
class StylizeReport:
    """Outcome of `stylize_all`.

    Attributes:
      outputs: files written (images, strips, videos or frame directories).
      failures: `(input path, one-line reason)` for each input that failed.
      seconds: wall time of the stylization (model loading excluded).
      frames_per_second: video frames per second (read + stylize + write),
        None without video.
    """

    outputs: list[str] = dataclasses.field(default_factory=list)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    frames_per_second: float | None = None


def _one_line(error):
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:400] + " ..."


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _alpha_tag(alpha):
    return f"alpha{alpha:.2f}"


class _Job:
    """Everything about the styles that does not depend on the content image."""

    def __init__(self, config, stylizer):
        self.config = config
        self.stylizer = stylizer
        self.styles = {}  # path -> [H, W, 3]
        self.failures = []
        for path in config.styles:
            try:
                self.styles[path] = image_io.load_image(path, max_size=config.max_size)
            except (OSError, ValueError) as e:
                self.fail(path, e)
        self.masks = {}  # path -> [H, W, 1] gray
        for path in config.masks or []:
            try:
                self.masks[path] = load_mask(path, max_size=config.max_size)
            except (OSError, ValueError) as e:
                self.fail(path, e)

    def fail(self, path, error):
        message = _one_line(error)
        if path not in message:
            message = f"{path}: {message}"
        logging.error("%s", message)
        self.failures.append((path, message))

    @property
    def usable(self):
        if self.config.masks is not None:
            return not self.failures
        return bool(self.styles)

    def outputs(self, content):
        """Stylized versions of one `[H, W, 3]` content image.

        Returns:
          List of `(name, images, strip_extra)` groups: `name` is the output
          name stem after the content's, `images` one `(alpha, image)` per
          alpha, `strip_extra` the style image shown at the end of a strip
          (None for regions).
        """
        cfg = self.config
        groups = []
        if cfg.masks is not None:
            styles = [self.styles[p] for p in cfg.styles]
            masks = [mask_for(self.masks[p], content.shape[:2]) for p in cfg.masks]
            name = "regions_" + "_".join(_stem(p) for p in cfg.styles)
            images = [
                (a, self.stylizer.stylize_regions(content, styles, masks, a)) for a in cfg.alphas
            ]
            groups.append((name, images, None))
        else:
            for path, style in self.styles.items():
                images = [(a, self.stylizer.stylize(content, style, a)) for a in cfg.alphas]
                groups.append((_stem(path), images, style))
        if cfg.preserve_color:
            groups = [
                (name, [(a, preserve_colors(img, content)) for a, img in images], extra)
                for name, images, extra in groups
            ]
        return groups


def _output_names(name, alphas):
    """File-name suffix per alpha: none for the plain `alpha=1` case."""
    if alphas == [1.0]:
        return [name]
    return [f"{name}_{_alpha_tag(a)}" for a in alphas]


def _stylize_images(job, report):
    cfg = job.config
    if os.path.isdir(cfg.content):
        try:
            files = image_io.list_images(cfg.content)
        except ValueError as e:
            job.fail(cfg.content, e)
            return
        root = cfg.content
    else:
        files, root = [cfg.content], os.path.dirname(cfg.content)
    progress = keras.utils.Progbar(len(files), unit_name="image")
    for i, path in enumerate(files):
        try:
            content = image_io.load_image(path, max_size=cfg.max_size)
            rel = os.path.relpath(os.path.dirname(path), root) if root else "."
            out_dir = os.path.normpath(os.path.join(cfg.output_dir, rel))
            stem = _stem(path)
            for name, images, extra in job.outputs(content):
                names = _output_names(name, cfg.alphas)
                for out_name, (_, image) in zip(names, images):
                    out_path = os.path.join(out_dir, f"{stem}_{out_name}{_OUTPUT_EXT}")
                    image_io.save_image(out_path, image)
                    report.outputs.append(out_path)
                if len(images) > 1:
                    # Fig. 9: content, the alpha sweep, then the style.
                    cells = [content] + [img for _, img in images]
                    cells += [extra] if extra is not None else []
                    strip = image_io.make_grid([cells], height=content.shape[0])
                    strip_path = os.path.join(out_dir, f"{stem}_{name}_alphas{_OUTPUT_EXT}")
                    image_io.save_image(strip_path, strip)
                    report.outputs.append(strip_path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            job.fail(path, e)
        progress.update(i + 1)


def _stylize_video(job, report):
    cfg = job.config
    reader = video_lib.VideoReader(cfg.video, max_size=cfg.max_size, max_frames=cfg.max_frames)
    stem = _stem(os.path.normpath(cfg.video))
    writers = {}
    start, frames = time.perf_counter(), 0
    progress = keras.utils.Progbar(reader.num_frames, unit_name="frame")
    try:
        for frame in reader:
            for name, images, _ in job.outputs(frame):
                for out_name, (_, image) in zip(_output_names(name, cfg.alphas), images):
                    if out_name not in writers:
                        writers[out_name] = video_lib.VideoWriter(
                            os.path.join(cfg.output_dir, f"{stem}_{out_name}"),
                            fps=reader.fps,
                            video_format=cfg.video_format,
                        )
                    writers[out_name].write(image)
            frames += 1
            progress.update(frames)
    finally:
        reader.close()
        for writer in writers.values():
            writer.close()
            report.outputs.append(writer.path)
    report.frames_per_second = frames / max(time.perf_counter() - start, 1e-9)
    logging.info(
        "Stylized %d frames of %s at %.2f frames/s -> %s",
        frames, cfg.video, report.frames_per_second,
        ", ".join(w.path for w in writers.values()),
    )


def stylize_all(config: StylizeConfig, stylizer: Stylizer | None = None) -> StylizeReport:
    """Stylizes every configured image and video; failures are collected, not raised.

    Args:
      config: `StylizeConfig`.
      stylizer: a ready `Stylizer`; default `load_stylizer(config)`.

    Returns:
      `StylizeReport`; `failures` names each input that could not be read or
      stylized (the others are still done).
    """
    stylizer = stylizer or inference.load_stylizer(
        config.saved_model,
        config.checkpoint_dir,
        config.random_init,
        config.vgg_weights,
        config.model_config,
    )
    report = StylizeReport()
    start = time.perf_counter()
    job = _Job(config, stylizer)
    if not job.usable:
        report.failures = job.failures
        return report
    if config.content:
        _stylize_images(job, report)
    if config.video:
        try:
            _stylize_video(job, report)
        except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
            job.fail(config.video, e)
    report.failures = job.failures
    report.seconds = time.perf_counter() - start
    return report


# ----------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------


def _define_flags():
    """Defines the command's flags on absl's global FLAGS (once)."""
    if "style" in flags.FLAGS:
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
        "alpha", ["1.0"],
        "Content/style trade-off of Eq. 8 in [0, 1], or a comma-separated list: then "
        "one output per alpha plus a strip image (Fig. 9).",
        module_name=owner,
    )
    flags.DEFINE_list(
        "mask", None,
        "Spatial control (Fig. 10): one mask image per --style, comma-separated; each is "
        "resized to the content and pixels > 0.5 get that style.",
        module_name=owner,
    )
    flags.DEFINE_boolean(
        "preserve_color", False,
        "Keep the content's colours: stylized luminance with the content's chroma (YUV).",
        module_name=owner,
    )
    flags.DEFINE_integer(
        "max_size", 1024, "Bound of the longer side of every input, in pixels (0: none).",
        module_name=owner,
    )
    flags.DEFINE_string("output_dir", None, "Output directory.", module_name=owner)
    flags.DEFINE_string(
        "video", None,
        "Video file (needs imageio-ffmpeg) or directory of frames, stylized frame by "
        "frame (Fig. 11).",
        module_name=owner,
    )
    flags.DEFINE_enum(
        "video_format", "auto", list(video_lib.VIDEO_FORMATS),
        "Video output: mp4 (needs imageio-ffmpeg), frames (PNG sequence), or auto "
        "(mp4 when possible).",
        module_name=owner,
    )
    flags.DEFINE_integer(
        "max_frames", None, "Stylize only the first N video frames.", module_name=owner
    )
    flags.DEFINE_string(
        "saved_model", None, "SavedModel directory written by export_savedmodel.py.",
        module_name=owner,
    )
    flags.DEFINE_string(
        "checkpoint_dir", None,
        "Training model_dir, a .weights.h5 file (its .config.json next to it) or a "
        "legacy TF checkpoint prefix.",
        module_name=owner,
    )
    flags.DEFINE_boolean(
        "random_init", False, "Use an untrained model (demos and tests only).", module_name=owner
    )
    flags.DEFINE_string(
        "vgg_weights", None,
        "VGG weights of the --random_init model: imagenet or the path of "
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (unset: random).",
        module_name=owner,
    )
    flags.DEFINE_string(
        "model_config", None,
        "JSON dict of ExchangeStyleTransfer arguments for --random_init, or for a legacy "
        "TF checkpoint whose model_dir holds no config.json (weights files carry their own).",
        module_name=owner,
    )
    flags.mark_flags_as_required(["style", "output_dir"])


def config_from_flags(flag_values=flags.FLAGS) -> StylizeConfig:
    """Turns the parsed flags into a `StylizeConfig` (raises `app.UsageError`)."""
    f = flag_values
    try:
        alphas = [float(a) for a in f.alpha]
    except ValueError as e:
        raise app.UsageError(f"--alpha must be floats, got {f.alpha}: {e}") from e
    try:
        model_config = json.loads(f.model_config) if f.model_config else {}
    except json.JSONDecodeError as e:
        raise app.UsageError(f"--model_config is not valid JSON: {e}") from e
    try:
        return StylizeConfig(
            content=f.content,
            styles=list(f.style),
            output_dir=f.output_dir,
            alphas=alphas,
            masks=list(f.mask) if f.mask else None,
            preserve_color=f.preserve_color,
            max_size=f.max_size if f.max_size and f.max_size > 0 else None,
            video=f.video,
            video_format=f.video_format,
            max_frames=f.max_frames,
            saved_model=f.saved_model,
            checkpoint_dir=f.checkpoint_dir,
            random_init=f.random_init,
            vgg_weights=f.vgg_weights or None,
            model_config=model_config,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    report = stylize_all(config)
    logging.info(
        "Wrote %d output(s) to %s in %.1f s.", len(report.outputs), config.output_dir,
        report.seconds,
    )
    if report.failures:
        logging.error(
            "%d input(s) failed: %s", len(report.failures),
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
