"""Inference on numpy images: the `Stylizer` over any model source, masks and colour keeping."""

from __future__ import annotations

import keras
import numpy as np
import psutil
import tensorflow as tf
from absl import logging

from exchange_st.data import image_io
from exchange_st.inference import tiling
from exchange_st.nn import ops
from exchange_st.nn.blending import blend_styles
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import checkpoints, export, loader

# Mask pixels above this gray level belong to the region (Fig. 10).
MASK_THRESHOLD = 0.5
PRECISIONS = ("float32", "bfloat16")
# Keras dtype policy of each precision: bfloat16 computes in bfloat16 and
# keeps float32 variables, so any checkpoint loads unchanged.
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# Peak memory of one untiled stylization per content + style pixel: the
# slope of bench.memory's plain runs (2.15 GiB at 1024^2, 5.25 GiB at 2048^2,
# docs/benchmarks.md, "Performance"), rounded up.
PLAIN_BYTES_PER_PIXEL = 1100
_PLAIN_BASE_BYTES = 1.2 * 2**30
# Share of the available memory a plain pass may take; the rest is left to
# the process's other buffers and to other programs.
_BUDGET_SHARE = 0.5
# Tile side of the tiled path when the memory budget (not --tile_size) chose it.
DEFAULT_TILE = 1024


def available_memory():
    """Bytes of memory available to a new allocation without swapping (`psutil`), any OS."""
    return psutil.virtual_memory().available


def plain_memory(content_shape, style_shape):
    """Estimated peak bytes of an untiled stylization of one `[H, W, C]` pair."""
    pixels = content_shape[0] * content_shape[1] + style_shape[0] * style_shape[1]
    return _PLAIN_BASE_BYTES + PLAIN_BYTES_PER_PIXEL * pixels


def check_size(image, path, what):
    """Raises `ValueError` in one sentence if `image` `[H, W, 3]` is too small for the network."""
    h, w = image.shape[:2]
    if min(h, w) < ops.MIN_IMAGE_SIZE:
        raise ValueError(
            f"The {what} image {path} is {w}x{h} pixels (as loaded); the network needs at "
            f"least {ops.MIN_IMAGE_SIZE} pixels on each side."
        )
    return image


class Stylizer:
    """Stylizes single numpy images with any model this project trains or exports.

    Runs the functions of `export.StylizeModule`, from a loaded SavedModel or
    from the module of an in-memory Keras model, so every source takes the
    same traced graphs. With the Keras exchange model it also runs the tiled
    path (`tiling.stylize_tiled`) for content above the memory budget.

    Args:
      module: object with the `StylizeModule` functions.
      model: the Keras model behind `module`; None for a SavedModel.
      tile_size: 0: tile only above the memory budget (tiles of
        `DEFAULT_TILE` px); N > 0: tile any content whose longer side
        exceeds N, with N-pixel tiles.
      memory_budget: bytes an untiled pass may use; None: half of the
        memory available when the stylizer is made.
    """

    def __init__(self, module, model=None, tile_size=0, memory_budget=None):
        self.module = module
        self.model = model
        self.tile_size = tile_size
        if memory_budget is None:
            memory_budget = _BUDGET_SHARE * available_memory()
        self.memory_budget = memory_budget

    @classmethod
    def from_saved_model(cls, path, **kwargs):
        """The stylizer of the SavedModel at `path` (`loader.load`)."""
        return cls(loader.load_saved_model(path), **kwargs)

    @classmethod
    def from_model(cls, model, **kwargs):
        if not model.built:
            model.build()
        return cls(export.StylizeModule(model), model, **kwargs)

    @property
    def blends(self):
        """Whether the model blends several styles (the exchange network; not AdaIN)."""
        return self.model is None or isinstance(self.model, ExchangeStyleTransfer)

    def require_blending(self):
        """Raises `ValueError` in one sentence if the model cannot blend several styles."""
        if not self.blends:
            raise ValueError(
                f"The {type(self.model).__name__} model renders one style at a time: several "
                "styles (--mask or --style_weights) need the exchange model."
            )

    def _tile(self, content, style):
        """`(tile side, reason)` for this pair, or `(None, None)` for one untiled pass."""
        if self.tile_size:
            if max(content.shape[:2]) <= self.tile_size:
                return None, None
            tile, reason = self.tile_size, "--tile_size"
        else:
            need = plain_memory(content.shape, style.shape)
            if need <= self.memory_budget:
                return None, None
            tile = DEFAULT_TILE
            reason = (
                f"about {need / 2**30:.1f} GiB untiled, over the memory budget of "
                f"{self.memory_budget / 2**30:.1f} GiB"
            )
        if not isinstance(self.model, ExchangeStyleTransfer):
            source = "a SavedModel" if self.model is None else f"a {type(self.model).__name__}"
            raise ValueError(
                f"The {content.shape[1]}x{content.shape[0]} content needs tiles ({reason}), "
                f"which {source} cannot run: use the exchange model's --checkpoint_dir, or "
                "a smaller --max_size."
            )
        return tile, reason

    def stylize(self, content, style, alpha=1.0):
        """`[H, W, 3]` content and `[H2, W2, 3]` style in [0, 1] -> `[H, W, 3]`."""
        tile, reason = self._tile(content, style)
        if tile is not None:
            logging.info(
                "Content %dx%d: stylizing in tiles of %d px (%s; exchange_st.inference.tiling.stylize_tiled).",
                content.shape[1],
                content.shape[0],
                tile,
                reason,
            )
            # The blend band must fit in a tile; with exact halos it only
            # averages equal values, so its width does not change the output.
            out = tiling.stylize_tiled(
                self.model, content[None], style[None], alpha, tile=tile, overlap=min(64, tile // 4)
            )
            return np.asarray(out[0])
        out = self.module.stylize(
            tf.constant(content[None], tf.float32),
            tf.constant(style[None], tf.float32),
            tf.constant(alpha, tf.float32),
        )
        return out[0].numpy()

    def blend(self, content, styles, alpha=1.0, weights=None, masks=None):
        """Several styles in one image (`blending.blend_styles`): interpolation or regions.

        Args:
          content: `[H, W, 3]`.
          styles: list of K `[H_k, W_k, 3]` styles.
          alpha: Eq. 8 trade-off for every style.
          weights: K non-negative weights, normalised (None: equal).
          masks: optional list of K `[H, W]` content masks in [0, 1]
            (Fig. 10): style k inside mask k.

        Returns:
          `[H, W, 3]` in [0, 1].
        """
        self.require_blending()
        for style in styles:
            tile, reason = self._tile(content, style)
            if tile is not None:
                raise ValueError(
                    f"The {content.shape[1]}x{content.shape[0]} content needs tiles ({reason}), "
                    "and several styles are blended untiled only: use a smaller --max_size."
                )
        out = blend_styles(
            self._fused_features,
            self.module.render_content,
            tf.constant(content[None], tf.float32),
            [tf.constant(s[None], tf.float32) for s in styles],
            tf.constant(alpha, tf.float32),
            weights=weights,
            content_masks=None if masks is None else [tf.constant(m[None]) for m in masks],
        )
        return out[0].numpy()

    def stylize_regions(self, content, styles, masks, alpha=1.0):
        """One style per region (Fig. 10): `blend` with masks."""
        return self.blend(content, styles, alpha, masks=masks)

    def _fused_features(self, content, style, alpha, content_mask, style_mask):
        # The exported function takes both masks; an all-ones mask is what
        # the model does without one.
        if content_mask is None:
            content_mask = tf.ones(tf.shape(content)[:3])
        if style_mask is None:
            style_mask = tf.ones(tf.shape(style)[:3])
        r_fusion = self.module.fused_features(
            content,
            style,
            tf.cast(alpha, tf.float32),
            _as_mask_batch(content_mask),
            _as_mask_batch(style_mask),
        )
        return r_fusion, content


def _as_mask_batch(mask):
    """`[H, W]`, `[B, H, W]` or `[B, H, W, 1]` -> `[B, H, W]` float32."""
    mask = tf.cast(mask, tf.float32)
    if mask.shape.rank == 2:
        return mask[None]
    if mask.shape.rank == 4:
        return mask[..., 0]
    return mask


def load_stylizer(
    saved_model=None,
    checkpoint_dir=None,
    random_init=False,
    vgg_weights=None,
    model_config=None,
    precision="float32",
    tile_size=0,
    family="efanet",
):
    """The `Stylizer` of one model source (`loader.load`), random weights or, with none of
    them, the pretrained release.

    Args:
      saved_model: directory of a SavedModel from `export_savedmodel.py`.
      checkpoint_dir: any source `loader.load` recognises: a release, a
        model_dir or `.weights.h5` file of any model `train.py` trains, a
        SavedModel, or a legacy checkpoint.
      random_init: an untrained exchange model (demos and tests only).
      vgg_weights: VGG weights of the `random_init` model.
      model_config: constructor kwargs for `random_init`, or for a legacy
        checkpoint without config.json.
      precision: `"float32"` or `"bfloat16"` (computation; the weights stay
        float32). A SavedModel runs in the precision it was exported in.
      tile_size: see `Stylizer`.
      family: `"efanet"` or `"adain"`: the pretrained release used with no
        other source, and the family of a `random_init` model.

    Raises:
      ValueError: an unknown precision, or bfloat16 with a SavedModel.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    policy = _POLICIES[precision]
    if saved_model:
        model = loader.load_saved_model(saved_model)
    elif random_init:
        config = dict(model_config or {}, dtype=policy)
        model = checkpoints.untrained_model(family, vgg_weights, config)
    else:
        model = loader.load(
            checkpoint_dir,
            model_config,
            dtype=policy,
            instead="--checkpoint_dir or --saved_model (exchange-st-stylize)",
            saved_model_ok=True,
            family=family,
        )
    if not isinstance(model, keras.Model):
        if precision != "float32":
            raise ValueError(
                f"A SavedModel runs in the precision it was exported in; --precision={precision} "
                "needs a Keras model (a release, a run or a weights file) or --random_init."
            )
        return Stylizer(model, tile_size=tile_size)
    if precision != "float32":
        logging.info("Computing in %s (%s policy).", precision, policy)
    return Stylizer.from_model(model, tile_size=tile_size)


def preserve_colors(stylized, content):
    """Keeps the content's colours: stylized luminance + content chroma (YUV).

    Args:
      stylized, content: `[H, W, 3]` in [0, 1], same size.

    Returns:
      `[H, W, 3]` in [0, 1].
    """
    y = tf.image.rgb_to_yuv(stylized)[..., :1]
    uv = tf.image.rgb_to_yuv(content)[..., 1:]
    rgb = tf.image.yuv_to_rgb(tf.concat([y, uv], axis=-1))
    return tf.clip_by_value(rgb, 0.0, 1.0).numpy()


def load_mask(path, max_size=None):
    """Reads a mask image (any format) as gray levels `[H, W, 1]` in [0, 1].

    Colour masks are averaged over the channels, so any bright colour marks
    the region.
    """
    return image_io.load_image(path, max_size=max_size, role="mask").mean(axis=-1, keepdims=True)


def mask_for(gray, size):
    """Gray mask `[H', W', 1]` -> binary `[H, W]` float32 region at `size` (Fig. 10)."""
    if gray.shape[:2] != tuple(size):
        gray = image_io.resize_array(gray, size)
    return (gray[..., 0] > MASK_THRESHOLD).astype(np.float32)
