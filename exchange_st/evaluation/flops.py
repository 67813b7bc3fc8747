"""Analytic FLOP counts of the encoder, the exchange model and AdaIN, walked from layer shapes.

Convention: one multiply-add is 2 FLOPs. Counted are convolutions, dense
layers, the covariance matmuls of the joint analysis, the per-pixel work of
the fusion (Eq. 1-2) and purification, and AdaIN's statistics. Biases,
activations, pooling, upsampling, padding, clipping and input checks are
not counted: together they are below 1% of the convolutions at every size.

Counts are walked from the layers' actual kernels (`layer.kernel.shape`,
strides, padding), so they follow any configuration of the models.

A training step's count is `train_flops`'s, built from these parts.
"""

import dataclasses
import math

import keras

from exchange_st.baselines.adain import AdaINNet
from exchange_st.nn import decoder as decoder_lib
from exchange_st.nn import ops
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.nn.vgg import VGGEncoder

# Per-pixel elementwise FLOPs of the AdaIN re-normalisation of a [N, C] map:
# mean (1 add), variance (subtract, square, add), normalise (subtract,
# multiply), re-style (multiply, add); the per-channel scalars are negligible.
_ADAIN_FLOPS_PER_ELEMENT = 8


@dataclasses.dataclass
class FlopCount:
    """A FLOP total with its breakdown.

    Attributes:
      parts: `{part name: FLOPs}`; parts are disjoint.
    """

    parts: dict = dataclasses.field(default_factory=dict)

    @property
    def total(self):
        return sum(self.parts.values())

    def add(self, name, flops):
        self.parts[name] = self.parts.get(name, 0) + int(flops)
        return self

    def scaled(self, factor):
        return FlopCount({k: v * factor for k, v in self.parts.items()})


def _out_size(size, kernel, stride, padding):
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def conv2d_flops(layer, h, w):
    """FLOPs of a `keras.layers.Conv2D` on an `[1, h, w, C_in]` input.

    Returns:
      `(flops, h_out, w_out)`.
    """
    kh, kw, c_in, c_out = layer.kernel.shape
    sh, sw = layer.strides
    h_out = _out_size(h, kh, sh, layer.padding)
    w_out = _out_size(w, kw, sw, layer.padding)
    return 2 * kh * kw * c_in * c_out * h_out * w_out, h_out, w_out


def dense_flops(layer, rows=1):
    """FLOPs of a `keras.layers.Dense` applied to `rows` vectors."""
    d_in, d_out = layer.kernel.shape
    return 2 * d_in * d_out * rows


def layer_stack_flops(layer_list, h, w):
    """FLOPs of a feed-forward stack of Conv2D, pooling, upsampling and residual blocks.

    Args:
      layer_list: the layers in call order.
      h, w: input spatial size.

    Returns:
      `(flops, h_out, w_out)`.

    Raises:
      TypeError: a layer type whose cost or output size is not known here.
    """
    total = 0
    for layer in layer_list:
        if isinstance(layer, keras.layers.Conv2D):
            flops, h, w = conv2d_flops(layer, h, w)
            total += flops
        elif isinstance(layer, keras.layers.MaxPooling2D):
            (ph, pw), (sh, sw) = layer.pool_size, layer.strides
            h = _out_size(h, ph, sh, layer.padding)
            w = _out_size(w, pw, sw, layer.padding)
        elif isinstance(layer, keras.layers.UpSampling2D):
            h, w = h * layer.size[0], w * layer.size[1]
        elif isinstance(layer, decoder_lib.ResidualBlock):
            flops, h, w = layer_stack_flops([layer.conv1, layer.conv2], h, w)
            total += flops
        else:
            raise TypeError(f"no FLOP rule for layer {layer.name!r} ({type(layer).__name__})")
    return total, h, w


_DEFAULT_ENCODER = {}
# Parts computed from the style image alone (once for a batch-1 style).
_STYLE_ONLY_PARTS = ("vgg_style", "covariance_style", "compressor_style")


def default_encoder():
    # Building VGG-19 takes a second; the kernel shapes never change.
    if "vgg" not in _DEFAULT_ENCODER:
        _DEFAULT_ENCODER["vgg"] = VGGEncoder(vgg_weights=None)
    return _DEFAULT_ENCODER["vgg"]


def vgg_flops(h, w, encoder=None):
    """FLOPs of the VGG-19 encoder to relu4_1 on one `[h, w]` image (no padding added).

    Args:
      h, w: image size as fed to the encoder.
      encoder: a `VGGEncoder`; default a random-weight one (same shapes).
    """
    encoder = encoder or default_encoder()
    flops, _, _ = layer_stack_flops(encoder.blocks, h, w)
    return flops


def covariance_flops(pixels, channels, masked=False):
    """`masked_covariance` of `[pixels, channels]`: mean, centring, (weighting) and the matmul."""
    per_element = 4 if masked else 2
    return 2 * pixels * channels * channels + per_element * pixels * channels


def compressor_flops(compressor, channels):
    """`CovarianceCompressor` after the covariance: convs on the `C x C` matrix and the FC."""
    convs, _, _ = layer_stack_flops(compressor.convs, channels, channels)
    return convs + dense_flops(compressor.fc)


def fusion_flops(fusion, pixels, channels):
    """`CSFusion` on `[pixels, channels]`."""
    if fusion.mode == "ours":
        # Eq. 1 (multiply, add per element) and Eq. 2 (multiply per element;
        # plus an add when k > 1 projections are summed), once per projection.
        per_projection = 3 if fusion.rank == 1 else 4
        return per_projection * fusion.rank * pixels * channels
    if fusion.mode == "adain":
        return _ADAIN_FLOPS_PER_ELEMENT * pixels * channels
    return dense_flops(fusion.mix_content, pixels) + dense_flops(fusion.mix_style)


def _ensure_built(model):
    # Kernel shapes exist only once the model has traced a call.
    if not model.built:
        model.build()


def padded_size(h, w):
    m = ops.ENCODER_STRIDE
    return -(-h // m) * m, -(-w // m) * m


def analysis_flops(model, content_pixels, style_pixels, channels):
    """`ExchangeStyleTransfer.analyze` for one pair of relu4_1 maps, as a `FlopCount`."""
    count = FlopCount()
    count.add("covariance_content", covariance_flops(content_pixels, channels))
    count.add("covariance_style", covariance_flops(style_pixels, channels))
    compress = compressor_flops(model.compressor, channels)
    count.add("compressor_content", compress)
    count.add("compressor_style", compress)
    codes = dense_flops(model.fc_uni_c) + dense_flops(model.fc_uni_s) + dense_flops(model.fc_com)
    for block in model.exchange_block_sequence():
        for unit in (block.rmp_c, block.rmp_s):
            codes += sum(dense_flops(d) for d in (unit.w1, unit.w2, unit.w3, unit.w4))
    heads = model.style_heads
    # analyze() evaluates the three heads for both images.
    codes += 2 * sum(dense_flops(d) for d in (heads.fc_w, heads.fc_c, heads.fc_r))
    count.add("codes", codes)
    return count


def encode_pair(model, h, w, hs, ws):
    """VGG FLOPs of a content/style pair and the relu4_1 grid sizes and width.

    Returns:
      `(FlopCount with vgg_content and vgg_style, (fh, fw), (fhs, fws), channels)`.
    """
    _ensure_built(model)
    hp, wp = padded_size(h, w)
    hsp, wsp = padded_size(hs, ws)
    encoder = model.encoder
    count = FlopCount()
    count.add("vgg_content", vgg_flops(hp, wp, encoder))
    count.add("vgg_style", vgg_flops(hsp, wsp, encoder))
    _, fh, fw = layer_stack_flops(encoder.blocks, hp, wp)
    _, fhs, fws = layer_stack_flops(encoder.blocks, hsp, wsp)
    return count, (fh, fw), (fhs, fws), encoder.blocks[-1].kernel.shape[-1]


def efanet_stylize_flops(h, w, hs, ws, model, alpha=1.0):
    """FLOPs of `ExchangeStyleTransfer.stylize` for one `[h, w]` content and `[hs, ws]` style.

    Follows the inference path: both images padded to multiples of 8, relu4_1
    of each, the joint analysis, purification, the content-branch decoder
    (`content_code`, one fusion, or two and the Eq. 8 blend when
    `alpha != 1`, and `render`).

    Returns:
      `FlopCount` with parts `vgg_content`, `vgg_style`,
      `covariance_content`, `covariance_style`, `compressor_content`,
      `compressor_style`, `codes`, `purify`, `content_code`, `fusion`,
      `render`.
    """
    count, (fh, fw), (fhs, fws), channels = encode_pair(model, h, w, hs, ws)
    pixels = fh * fw
    for name, flops in analysis_flops(model, pixels, fhs * fws, channels).parts.items():
        count.add(name, flops)
    count.add("purify", pixels * channels)
    decoder = model.decoder_c
    code, _, _ = layer_stack_flops(decoder.pre_blocks, fh, fw)
    count.add("content_code", code)
    fusion = fusion_flops(decoder.fusion, pixels, channels)
    if isinstance(alpha, (int, float)) and alpha == 1.0:
        count.add("fusion", fusion)
    else:
        count.add("fusion", 2 * fusion + 3 * pixels * channels)
    render, _, _ = layer_stack_flops(decoder.render_layers(), fh, fw)
    count.add("render", render)
    return count


def adain_stylize_flops(h, w, hs, ws, model, alpha=1.0):
    """FLOPs of `AdaINNet.stylize` for one `[h, w]` content and `[hs, ws]` style.

    Returns:
      `FlopCount` with parts `vgg_content`, `vgg_style`, `adain`, `render`.
    """
    count, (fh, fw), (fhs, fws), channels = encode_pair(model, h, w, hs, ws)
    adain = _ADAIN_FLOPS_PER_ELEMENT * fh * fw * channels + 3 * fhs * fws * channels
    if not (isinstance(alpha, (int, float)) and alpha == 1.0):
        adain += 3 * fh * fw * channels
    count.add("adain", adain)
    render, _, _ = layer_stack_flops(model.decoder.render_layers(), fh, fw)
    count.add("render", render)
    return count


def count_flops(model, content_shape, style_shape, alpha=1.0):
    """FLOPs of `model.stylize` on a content batch and a style batch.

    Args:
      model: an `ExchangeStyleTransfer` or an `AdaINNet`, or a `VGGEncoder`
        (then `style_shape` is ignored and the count is the encoder's).
      content_shape: `[B, H, W, 3]`.
      style_shape: `[B or 1, H2, W2, 3]`; a batch-1 style is encoded and
        analysed once per call by the models, but its codes are broadcast,
        so it is counted once.
      alpha: the Eq. 8 / AdaIN trade-off (1.0 skips the blend).

    Returns:
      `FlopCount` (for the whole batch).
    """
    b, h, w = content_shape[0], content_shape[1], content_shape[2]
    if isinstance(model, VGGEncoder):
        return FlopCount({"vgg": b * vgg_flops(h, w, model)})
    bs, hs, ws = style_shape[0], style_shape[1], style_shape[2]
    if isinstance(model, ExchangeStyleTransfer):
        per = efanet_stylize_flops(h, w, hs, ws, model, alpha)
    elif isinstance(model, AdaINNet):
        per = adain_stylize_flops(h, w, hs, ws, model, alpha)
    else:
        raise TypeError(f"no FLOP count for {type(model).__name__}")
    count = per.scaled(b)
    if bs == 1 and b > 1:
        # The style's encoder pass and covariance analysis run once for the
        # whole batch; its codes are broadcast.
        for part in _STYLE_ONLY_PARTS:
            if part in per.parts:
                count.parts[part] = per.parts[part]
    return count
