"""Stylizing files: images, folders and videos with one or more styles, as the command does.

`StylizeConfig` says what to stylize, how and with which model;
`stylize_all` runs it with a `stylizer_lib.Stylizer` and collects failures
instead of raising, so one bad file does not stop a folder.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import tensorflow as tf
from absl import logging

from exchange_st.data import image_io, sources
from exchange_st.inference import stylizer as stylizer_lib
from exchange_st.inference import video as video_lib
from exchange_st.inference.stylizer import Stylizer, load_mask, mask_for, preserve_colors
from exchange_st.nn import ops

# Output images are always PNG (lossless; a JPEG would add block artefacts).
_OUTPUT_EXT = ".png"


@dataclasses.dataclass
class StylizeConfig:
    """What to stylize, how, and with which model.

    Attributes:
      content: an image file or a directory of images (searched recursively;
        outputs keep the sub-directory layout). May be None with `video`.
      styles: style image files; without masks or weights every content
        image is stylized with each style separately.
      style_weights: one weight per style: every content image gets one
        interpolation of all styles (`blending.blend_styles`: their `R_fusion`
        maps averaged with the normalised weights); with masks, the weight
        of each region.
      output_dir: where results go (created).
      alphas: Eq. 8 trade-offs; more than one also writes a strip image
        `<content>_<style>_alphas.png` (Fig. 9).
      masks: one mask image per style for spatial control (Fig. 10): every
        content image gets all styles at once, style k inside mask k.
      preserve_color: keep the content's colours: the stylized luminance is
        recombined with the content's chroma (YUV).
      max_size: bound of the longer side of the content, the video frames and
        the masks (memory/time); None: full resolution (above the memory
        budget the tiled path).
      style_size: bound of the longer side of each style image; None: the
        content's `max_size`. 768 by default: the paper trains on styles
        resized to a 512 px short side (~768 px long side), and on four pairs
        (512 and 1024 px content) a 768 px style matched the fed style's Gram
        statistics best, in 9-16% less time than 1024 (docs/design.md, "Style size").
      tile_size: 0: tile only content above the memory budget; N: tile
        content longer than N px with N-pixel tiles (see `Stylizer`).
      precision: `"float32"` or `"bfloat16"` (checkpoints and random_init).
      video: a video file or a directory of frames, stylized frame by frame.
      video_format: `"auto"`, `"mp4"` or `"frames"` (see `video.VideoWriter`).
      max_frames: stop the video after this many frames (None: all).
      saved_model: directory of a SavedModel from `export_savedmodel.py`.
      checkpoint_dir: a model_dir, `.weights.h5` file or legacy checkpoint
        prefix of any model train.py trains (efanet, its ablations, adain).
      model: `"efanet"` or `"adain"`: the pretrained release used when no
        model source is given, and the family of a `random_init` model.
      random_init: use an untrained model (demos and tests only). With none
        of the three the pretrained release is used (`release.load`).
      vgg_weights: VGG weights of the `random_init` model: `"imagenet"` or an
        h5 path (None: random). Checkpoints and SavedModels hold their own.
      model_config: `ExchangeStyleTransfer` kwargs for `random_init`, or for
        a legacy `checkpoint_dir` without config.json.
      skip_unreadable: an input that cannot be read is skipped, named and
        listed at the end (the others are stylized); False stylizes nothing
        when any style, mask or content file of the request cannot be read.
    """

    content: str | None
    styles: list[str]
    output_dir: str
    alphas: list[float] = dataclasses.field(default_factory=lambda: [1.0])
    masks: list[str] | None = None
    style_weights: list[float] | None = None
    preserve_color: bool = False
    max_size: int | None = 1024
    style_size: int | None = 768
    tile_size: int = 0
    precision: str = "float32"
    video: str | None = None
    video_format: str = "auto"
    max_frames: int | None = None
    saved_model: str | None = None
    checkpoint_dir: str | None = None
    random_init: bool = False
    model: str = "efanet"
    vgg_weights: str | None = None
    model_config: dict = dataclasses.field(default_factory=dict)
    skip_unreadable: bool = True

    def __post_init__(self):
        given = [bool(self.saved_model), bool(self.checkpoint_dir), self.random_init]
        if sum(given) > 1:
            raise ValueError(
                "Give at most one model source: saved_model, checkpoint_dir or random_init "
                "(none: the pretrained release)."
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
        if self.style_weights is not None and len(self.style_weights) != len(self.styles):
            raise ValueError(
                f"Need one style weight per style, got {len(self.style_weights)} weights for "
                f"{len(self.styles)} styles."
            )
        if self.style_weights is not None and (
            min(self.style_weights) < 0 or sum(self.style_weights) <= 0
        ):
            raise ValueError(
                f"Style weights must be >= 0 with a positive sum: {self.style_weights}."
            )
        if self.max_size is not None and self.max_size < ops.MIN_IMAGE_SIZE:
            raise ValueError(
                f"max_size must be >= {ops.MIN_IMAGE_SIZE} (the model's minimum) or 0 (full "
                f"resolution), got {self.max_size}."
            )
        if self.style_size is not None and self.style_size < ops.MIN_IMAGE_SIZE:
            raise ValueError(
                f"style_size must be >= {ops.MIN_IMAGE_SIZE} (the model's minimum) or 0 (the "
                f"content's max_size), got {self.style_size}."
            )
        if self.tile_size and self.tile_size < ops.MIN_IMAGE_SIZE:
            raise ValueError(f"tile_size must be 0 (auto) or >= {ops.MIN_IMAGE_SIZE}.")
        if self.model not in ("efanet", "adain"):
            raise ValueError(f"model must be 'efanet' or 'adain', got {self.model!r}.")
        if self.precision not in stylizer_lib.PRECISIONS:
            raise ValueError(
                f"precision must be one of {stylizer_lib.PRECISIONS}, got {self.precision!r}."
            )
        if self.video_format not in video_lib.VIDEO_FORMATS:
            raise ValueError(
                f"video_format must be one of {video_lib.VIDEO_FORMATS}, got {self.video_format!r}."
            )

    @property
    def style_bound(self):
        """The longer-side bound the style images are loaded with."""
        return self.style_size if self.style_size is not None else self.max_size


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
                self.styles[path] = stylizer_lib.check_size(
                    image_io.load_image(path, max_size=config.style_bound, role="style"),
                    path,
                    "style",
                )
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
    def images_per_content(self):
        """Stylized images made per content image: one per style (or blend) and alpha."""
        cfg = self.config
        blended = cfg.masks is not None or cfg.style_weights is not None
        return (1 if blended else len(self.styles)) * len(cfg.alphas)

    @property
    def usable(self):
        if self.config.masks is not None or self.config.style_weights is not None:
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
        if cfg.masks is not None or cfg.style_weights is not None:
            styles = [self.styles[p] for p in cfg.styles]
            masks = None
            if cfg.masks is not None:
                masks = [mask_for(self.masks[p], content.shape[:2]) for p in cfg.masks]
            kind = "regions_" if masks is not None else "mix_"
            name = kind + "_".join(_stem(p) for p in cfg.styles)
            images = [
                (a, self.stylizer.blend(content, styles, a, cfg.style_weights, masks))
                for a in cfg.alphas
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
        if not cfg.skip_unreadable:
            _, bad = sources.scan_image_files(files)
            for path in bad:
                job.fail(path, image_io.ImageReadError(f"{path} (content) cannot be read"))
            if bad:
                return
    else:
        files, root = [cfg.content], os.path.dirname(cfg.content)
    # What is really made: each content under every style (or one blend) and alpha.
    per_content = job.images_per_content
    progress = keras.utils.Progbar(len(files) * per_content, unit_name="stylized image")
    for i, path in enumerate(files):
        try:
            content = image_io.load_image(path, max_size=cfg.max_size, role="content")
            stylizer_lib.check_size(content, path, "content")
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
        progress.update((i + 1) * per_content)


def _stylize_video(job, report):
    cfg = job.config
    reader = video_lib.VideoReader(cfg.video, max_size=cfg.max_size, max_frames=cfg.max_frames)
    stem = _stem(os.path.normpath(cfg.video))
    writers = {}
    start, frames = time.perf_counter(), 0
    progress = keras.utils.Progbar(reader.num_frames, unit_name="frame")
    try:
        for frame in reader:
            stylizer_lib.check_size(frame, cfg.video, "video frame")
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
        frames,
        cfg.video,
        report.frames_per_second,
        ", ".join(w.path for w in writers.values()),
    )


def load_stylizer(config: StylizeConfig) -> Stylizer:
    """`stylizer_lib.load_stylizer` of the configured model source, precision and tiling."""
    return stylizer_lib.load_stylizer(
        config.saved_model,
        config.checkpoint_dir,
        config.random_init,
        config.vgg_weights,
        config.model_config,
        precision=config.precision,
        family=config.model,
        tile_size=config.tile_size,
    )


def stylize_all(config: StylizeConfig, stylizer: Stylizer | None = None) -> StylizeReport:
    """Stylizes every configured image and video; failures are collected, not raised.

    Args:
      config: `StylizeConfig`.
      stylizer: a ready `Stylizer`; default `load_stylizer(config)`.

    Returns:
      `StylizeReport`; `failures` names each input that could not be read or
      stylized (the others are still done).

    Raises:
      ValueError: several styles for a model that renders one at a time.
    """
    stylizer = stylizer or load_stylizer(config)
    if config.masks is not None or config.style_weights is not None:
        stylizer.require_blending()
    report = StylizeReport()
    start = time.perf_counter()
    job = _Job(config, stylizer)
    if not job.usable or (job.failures and not config.skip_unreadable):
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
