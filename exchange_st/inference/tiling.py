"""Tiled stylization of images too large for one pass: global analysis, tiled encoder/decoder."""

import math

import keras
import numpy as np
import tensorflow as tf

from exchange_st.nn import decoder as decoder_lib
from exchange_st.nn import ops


def receptive_radius(layer_list):
    """How far (in input pixels) an output pixel of a layer stack sees to either side.

    Walks 3 x 3-style convolutions, max pools, upsamplings and residual
    blocks; the radius may be fractional when the stack upsamples.

    Args:
      layer_list: layers in call order.

    Returns:
      Radius in units of the stack's input pixels (float).

    Raises:
      TypeError: a layer whose spatial extent is not known here.
    """
    radius, jump = 0.0, 1.0  # jump: input pixels per pixel of the current map
    for layer in layer_list:
        if isinstance(layer, keras.layers.Conv2D):
            k = max(layer.kernel_size)
            d = max(layer.dilation_rate)
            radius += (k - 1) // 2 * d * jump
            jump *= max(layer.strides)
        elif isinstance(layer, keras.layers.MaxPooling2D):
            radius += (max(layer.pool_size) - 1) * jump
            jump *= max(layer.strides)
        elif isinstance(layer, keras.layers.UpSampling2D):
            jump /= max(layer.size)
        elif isinstance(layer, decoder_lib.ResidualBlock):
            radius += receptive_radius([layer.conv1, layer.conv2]) * jump
        else:
            raise TypeError(f"no receptive field rule for {layer.name!r} ({type(layer).__name__})")
    return radius


def _upsampling_factor(decoder):
    factor = 1
    for layer in decoder.up_layers:
        if isinstance(layer, keras.layers.UpSampling2D):
            factor *= layer.size[0]
    return factor


def _spans(size, tile):
    """`[(start, stop)]` covering `[0, size)` with pieces of at most `tile`."""
    return [(a, min(a + tile, size)) for a in range(0, size, tile)]


def encode_tiled(encoder, images, tile=1024, halo=None):
    """relu4_1 of `images` computed tile by tile; equal to `encoder(images, output_all=False)`.

    Each tile is encoded with `halo` pixels of real context on every side
    (except at the image border, where the untiled pass sees zero padding
    too), so with the default halo, the receptive field radius rounded up
    to the encoder stride, every feature is the one of the whole image.

    Args:
      encoder: a `VGGEncoder`.
      images: `[B, H, W, 3]`, H and W multiples of the encoder stride (8);
        `ExchangeStyleTransfer` reflect-pads to that (`ops.pad_to_multiple`).
      tile: tile side in pixels (rounded down to a multiple of 8).
      halo: context in pixels (rounded up to a multiple of 8); None = exact.

    Returns:
      `[B, H/8, W/8, 512]` features.
    """
    stride = ops.ENCODER_STRIDE
    shape = images.shape
    h, w = int(shape[1]), int(shape[2])
    if h % stride or w % stride:
        raise ValueError(f"images must be padded to multiples of {stride}, got {h} x {w}")
    if halo is None:
        halo = receptive_radius(encoder.blocks)
    halo = int(math.ceil(halo / stride)) * stride
    tile = max(stride, tile // stride * stride)
    encode = _tile_function(lambda x: encoder(x, output_all=False), images)
    rows = []
    for y0, y1 in _spans(h, tile):
        ys, ye = max(0, y0 - halo), min(h, y1 + halo)
        row = []
        for x0, x1 in _spans(w, tile):
            xs, xe = max(0, x0 - halo), min(w, x1 + halo)
            feats = encode(images[:, ys:ye, xs:xe, :])
            row.append(
                feats[
                    :,
                    (y0 - ys) // stride : (y1 - ys) // stride,
                    (x0 - xs) // stride : (x1 - xs) // stride,
                    :,
                ]
            )
        rows.append(tf.concat(row, axis=2))
    return tf.concat(rows, axis=1)


def _tile_function(fn, example):
    # Tiles differ in size at the borders: one trace with free spatial
    # dimensions serves them all.
    spec = tf.TensorSpec([None, None, None, example.shape[-1]], tf.as_dtype(example.dtype))
    return tf.function(fn, input_signature=[spec])


def _axis_weights(lo, hi, core_lo, core_hi, band, size):
    """1-D blend weights of the samples `[lo, hi)` of a tile with core `[core_lo, core_hi)`.

    Raised-cosine ramps `band` samples wide, centred on the core's interior
    borders; a neighbour's ramp over the same band is the complement
    (sin^2 + cos^2 = 1), so the weights of all tiles sum to 1 everywhere.
    """
    pos = np.arange(lo, hi, dtype=np.float64) + 0.5
    w = np.ones_like(pos)
    if band > 0:
        half = band / 2.0
        if core_lo > 0:
            t = np.clip((pos - (core_lo - half)) / band, 0.0, 1.0)
            w *= np.sin(0.5 * np.pi * t) ** 2
        if core_hi < size:
            t = np.clip((pos - (core_hi - half)) / band, 0.0, 1.0)
            w *= np.cos(0.5 * np.pi * t) ** 2
    return w.astype(np.float32)


def render_tiled(decoder, r_fusion, tile=128, overlap=8, halo=None):
    """`decoder.render(r_fusion)` computed tile by tile and blended seamlessly.

    Tiles partition the feature map into cores of `tile` feature pixels.
    Each tile renders its core plus `overlap / 2` on each side (the blend
    band) plus `halo` of context, then contributes its band and core with a
    raised-cosine window that sums to 1 with its neighbours'. With the
    default halo (the render stack's receptive radius) each rendered pixel
    equals the untiled one and the blend only averages equal values; a
    smaller halo trades exactness for speed, the window then hides seams.

    Args:
      decoder: a `decoder.Decoder`.
      r_fusion: `[B, h, w, C]` fused features (Eq. 2 / Eq. 8).
      tile: core side in feature pixels.
      overlap: blend band width in feature pixels.
      halo: context in feature pixels; None = exact.

    Returns:
      `[B, f*h, f*w, 3]` float32 image, `f` the decoder's upsampling factor (8).
    """
    shape = r_fusion.shape
    b, h, w = int(shape[0]), int(shape[1]), int(shape[2])
    if halo is None:
        halo = receptive_radius(decoder.render_layers())
    halo = int(math.ceil(halo))
    extra = int(math.ceil(overlap / 2))
    if 2 * extra > tile:
        raise ValueError(f"overlap ({overlap}) must not exceed the tile ({tile})")
    f = _upsampling_factor(decoder)
    render = _tile_function(decoder.render, r_fusion)
    out = np.zeros([b, h * f, w * f, 3], np.float32)
    weight = np.zeros([1, h * f, w * f, 1], np.float32)
    for y0, y1 in _spans(h, tile):
        by0, by1 = max(0, y0 - extra), min(h, y1 + extra)  # blended rows
        ys, ye = max(0, by0 - halo), min(h, by1 + halo)  # computed rows
        wy = _axis_weights(by0 * f, by1 * f, y0 * f, y1 * f, 2 * extra * f, h * f)
        for x0, x1 in _spans(w, tile):
            bx0, bx1 = max(0, x0 - extra), min(w, x1 + extra)
            xs, xe = max(0, bx0 - halo), min(w, bx1 + halo)
            wx = _axis_weights(bx0 * f, bx1 * f, x0 * f, x1 * f, 2 * extra * f, w * f)
            image = render(r_fusion[:, ys:ye, xs:xe, :])
            image = tf.cast(image, tf.float32).numpy()
            image = image[:, (by0 - ys) * f : (by1 - ys) * f, (bx0 - xs) * f : (bx1 - xs) * f]
            win = (wy[:, None] * wx[None, :])[None, :, :, None]
            out[:, by0 * f : by1 * f, bx0 * f : bx1 * f] += image * win
            weight[:, by0 * f : by1 * f, bx0 * f : bx1 * f] += win
    return out / np.maximum(weight, 1e-12)


def fuse_banded(model, f_vgg_c, codes, alpha=1.0, rows=128, halo=None):
    """`R_fusion` of the content branch (Eq. 1-2 and 8), computed in bands of feature rows.

    Purification, the pre-fusion residual blocks and the fusion are applied
    to full-width bands of `rows` feature rows with `halo` rows of context,
    and written into one host array, so the 1/8-resolution intermediates of
    the whole image never coexist.

    Args:
      model: an `ExchangeStyleTransfer`.
      f_vgg_c: `[B, h, w, 512]` relu4_1 of the (padded) content.
      codes: `model.analyze(...)` of the pair.
      alpha: Eq. 8 trade-off.
      rows: band height in feature pixels.
      halo: context rows; None = exact (the residual blocks' receptive radius).

    Returns:
      `[B, h, w, 512]` numpy array, equal to `model.fused_features`' `R_fusion`.
    """
    if halo is None:
        halo = receptive_radius(model.decoder_c.pre_blocks)
    halo = int(math.ceil(halo))
    if not (isinstance(alpha, (int, float)) and alpha == 1.0):
        alpha = tf.cast(alpha, model.decoder_c.compute_dtype)

    def band(f_vgg):
        return model.content_fusion(f_vgg, codes, alpha)

    fn = _tile_function(band, f_vgg_c)
    h = int(f_vgg_c.shape[1])
    out = None
    for y0, y1 in _spans(h, rows):
        ys, ye = max(0, y0 - halo), min(h, y1 + halo)
        piece = fn(f_vgg_c[:, ys:ye]).numpy()
        if out is None:
            out = np.empty(tuple(f_vgg_c.shape[:3]) + piece.shape[3:], piece.dtype)
        out[:, y0:y1] = piece[:, y0 - ys : y1 - ys]
    return out


def stylize_tiled(model, content, style, alpha=1.0, tile=1024, overlap=64, halo=None):
    """`model.stylize(content, style, alpha)` for images too large for one pass.

    The pairwise analysis runs once on the whole relu4_1 maps, so the
    covariances, `v_w`, `v_c` and `v_r` are those of the full images. What
    grows with the image is split: the VGG encoder (content and style) and
    the decoder's rendering run on tiles, the 1/8-resolution content code
    and fusion (Eq. 1-2, Eq. 8) on bands of rows. With the default halos
    every piece sees its whole receptive field and the output equals the
    untiled one; peak memory is then set by `tile` plus two relu4_1-sized
    maps (docs/design.md, "Inference").

    Args:
      model: an `ExchangeStyleTransfer`.
      content: `[B, H, W, 3]` in [0, 1].
      style: `[B or 1, H2, W2, 3]` in [0, 1].
      alpha: Eq. 8 trade-off (scalar).
      tile: tile side in pixels (a multiple of 8; rounded down).
      overlap: width in pixels of the raised-cosine blend between rendered tiles.
      halo: context in pixels around every tile and band; None = exact (the
        layers' receptive radii), i.e. output equal to the untiled one.

    Returns:
      `[B, H, W, 3]` float32 in [0, 1] (a tensor).
    """
    stride = ops.ENCODER_STRIDE
    content = ops.validate_images(content, "content")
    style = ops.validate_images(style, "style")
    f_vgg_c = encode_tiled(model.encoder, ops.pad_to_multiple(content), tile, halo)
    f_vgg_s = encode_tiled(model.encoder, ops.pad_to_multiple(style), tile, halo)
    codes = model.analyze(f_vgg_c, f_vgg_s)
    del f_vgg_s
    feature_tile = max(1, tile // stride)
    feature_halo = None if halo is None else halo / stride
    r_fusion = fuse_banded(model, f_vgg_c, codes, alpha, feature_tile, feature_halo)
    del f_vgg_c
    image = render_tiled(model.decoder_c, r_fusion, feature_tile, overlap / stride, feature_halo)
    image = ops.crop_to(tf.convert_to_tensor(image), content)
    return tf.clip_by_value(image, 0.0, 1.0)
