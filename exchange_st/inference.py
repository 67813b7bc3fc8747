"""Inference on numpy images: the `Stylizer` over any model source, masks and colour keeping."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from exchange_st import checkpoints
from exchange_st import export
from exchange_st import image_io
from exchange_st.model import ExchangeStyleTransfer

# Mask pixels above this gray level belong to the region (Fig. 10).
MASK_THRESHOLD = 0.5


class Stylizer:
    """Runs the exported inference functions on single numpy images.

    Wraps either a loaded SavedModel or an in-memory `export.StylizeModule`,
    which expose the same functions, so every model source takes one path.

    Args:
      module: object with the `StylizeModule` functions.
    """

    def __init__(self, module):
        self.module = module

    @classmethod
    def from_saved_model(cls, path):
        return cls(tf.saved_model.load(path))

    @classmethod
    def from_model(cls, model):
        if not model.built:
            model.build()
        return cls(export.StylizeModule(model))

    def stylize(self, content, style, alpha=1.0):
        """`[H, W, 3]` content and `[H2, W2, 3]` style in [0, 1] -> `[H, W, 3]`."""
        out = self.module.stylize(
            tf.constant(content[None], tf.float32),
            tf.constant(style[None], tf.float32),
            tf.constant(alpha, tf.float32),
        )
        return out[0].numpy()

    def stylize_regions(self, content, styles, masks, alpha=1.0):
        """One style per region (Fig. 10).

        Args:
          content: `[H, W, 3]`.
          styles: list of K `[H_k, W_k, 3]` styles.
          masks: list of K `[H, W]` content masks in [0, 1].
          alpha: Eq. 8 trade-off in every region.

        Returns:
          `[H, W, 3]` in [0, 1].
        """
        # The model's own blending code, run on the exported functions: it
        # only calls `fused_features` and `render_content`, which
        # `_RegionFunctions` provides with the model's signatures.
        out = ExchangeStyleTransfer.stylize_regions(
            _RegionFunctions(self.module),
            tf.constant(content[None], tf.float32),
            [tf.constant(s[None], tf.float32) for s in styles],
            [tf.constant(m[None], tf.float32) for m in masks],
            tf.constant(alpha, tf.float32),
        )
        return out[0].numpy()


class _RegionFunctions:
    """`fused_features` / `render_content` of `ExchangeStyleTransfer`, backed by a module.

    The exported `fused_features` takes both masks; a missing mask is all
    ones, which the model treats exactly like no mask.
    """

    def __init__(self, module):
        self._module = module

    def fused_features(self, content, style, alpha=1.0, content_mask=None, style_mask=None):
        content = tf.convert_to_tensor(content, tf.float32)
        style = tf.convert_to_tensor(style, tf.float32)
        if content_mask is None:
            content_mask = tf.ones(tf.shape(content)[:3])
        if style_mask is None:
            style_mask = tf.ones(tf.shape(style)[:3])
        r_fusion = self._module.fused_features(
            content, style, tf.cast(alpha, tf.float32),
            _as_mask_batch(content_mask), _as_mask_batch(style_mask),
        )
        return r_fusion, content

    def render_content(self, r_fusion, content):
        return self._module.render_content(r_fusion, content)


def _as_mask_batch(mask):
    """`[H, W]`, `[B, H, W]` or `[B, H, W, 1]` -> `[B, H, W]` float32."""
    mask = tf.cast(mask, tf.float32)
    if mask.shape.rank == 2:
        return mask[None]
    if mask.shape.rank == 4:
        return mask[..., 0]
    return mask


def load_stylizer(
    saved_model=None, checkpoint_dir=None, random_init=False, vgg_weights=None, model_config=None
):
    """The `Stylizer` of one model source: a SavedModel, a training run, or random weights.

    Args:
      saved_model: directory of a SavedModel from `export_savedmodel.py`.
      checkpoint_dir: a training model_dir, `.weights.h5` file or legacy
        checkpoint prefix (`checkpoints.load_model`).
      random_init: an untrained model (demos and tests only).
      vgg_weights: VGG weights of the `random_init` model.
      model_config: constructor kwargs for `random_init`, or for a legacy
        checkpoint without config.json.
    """
    if saved_model:
        logging.info("Loading SavedModel %s.", saved_model)
        return Stylizer.from_saved_model(saved_model)
    if checkpoint_dir:
        model = checkpoints.load_model(
            checkpoint_dir, model_config, expect=ExchangeStyleTransfer
        )
        return Stylizer.from_model(model)
    return Stylizer.from_model(
        checkpoints.untrained_model("efanet", vgg_weights, model_config)
    )


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
    return image_io.load_image(path, max_size=max_size).mean(axis=-1, keepdims=True)


def mask_for(gray, size):
    """Gray mask `[H', W', 1]` -> binary `[H, W]` float32 region at `size` (Fig. 10)."""
    if gray.shape[:2] != tuple(size):
        gray = image_io.resize_array(gray, size)
    return (gray[..., 0] > MASK_THRESHOLD).astype(np.float32)
