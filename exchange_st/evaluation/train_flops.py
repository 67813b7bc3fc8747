"""Analytic FLOPs of a training step, from the stylization counts of `flops`.

`training_flops` counts the forward pass of `call` + `compute_loss` (both
images through the whole network, the loss encoder on the generated images,
the Gram matrices of Eq. 4); `training_step_flops` adds the backward pass by
the "3x" model-FLOP convention or by what actually needs a gradient.
Convention as in `flops`: one multiply-add is 2 FLOPs.
"""

from exchange_st.baselines.adain import AdaINNet
from exchange_st.evaluation import flops
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.nn.vgg import VGG_LAYERS


def vgg_feature_sizes(h, w, encoder=None):
    """`(pixels, channels)` of each map relu1_1..relu4_1 of the encoder on an `[h, w]` image."""
    encoder = encoder or flops.default_encoder()
    sizes = []
    for layer in encoder.blocks:
        _, h, w = flops.layer_stack_flops([layer], h, w)
        if layer.name in VGG_LAYERS:
            sizes.append((h * w, layer.kernel.shape[-1]))
    return sizes


def gram_flops(h, w, encoder=None):
    """`losses.gram_matrix` of the four VGG maps of one `[h, w]` image (`2 hw C^2` each)."""
    return sum(2 * pixels * c * c for pixels, c in vgg_feature_sizes(h, w, encoder))


# Parts of a training step's forward pass that need no backward pass: the
# fixed VGG on the input images (neither its weights nor the images need a
# gradient), what is computed from those features alone before any weight
# (covariances, AdaIN's target) and the Gram matrices of the target maps.
NO_BACKWARD_PARTS = (
    "vgg_content",
    "vgg_style",
    "covariance_content",
    "covariance_style",
    "adain",
    "gram_targets",
)
# The fixed VGG on the generated images (Eq. 3-4) passes the gradient on to
# its input but computes none for its frozen weights: one backward pass.
INPUT_GRADIENT_PARTS = ("vgg_outputs",)
# How `training_step_flops` counts the backward pass: "3x" is the usual
# model-FLOP convention (backward = 2 x forward, for every part); "needed"
# counts 0 x for `NO_BACKWARD_PARTS`, 1 x for `INPUT_GRADIENT_PARTS` and
# 2 x for the rest (input and weight gradients).
STEP_CONVENTIONS = ("3x", "needed")


def efanet_training_flops(h, w, hs, ws, model):
    """Forward FLOPs of `ExchangeStyleTransfer.call` + `compute_loss` for one training pair.

    Both images go through the whole network (Fig. 3): VGG, the joint
    analysis, purification, both content codes, four fusions and renders
    (`s2c`, `c2c` at the content size, `c2s`, `s2s` at the style size), the
    reconstruction FC of Eq. 6, then the loss encoder on `s2c` and `c2s`
    and the Gram matrices of Eq. 4 (outputs and targets).

    Returns:
      `FlopCount` with the parts of `efanet_stylize_flops` (for both
      images) plus `vgg_outputs`, `gram_outputs`, `gram_targets`.
    """
    count, (fh, fw), (fhs, fws), channels = flops.encode_pair(model, h, w, hs, ws)
    pc, ps = fh * fw, fhs * fws
    for name, part in flops.analysis_flops(model, pc, ps, channels).parts.items():
        count.add(name, part)
    count.add("codes", 2 * flops.dense_flops(model.fc_rec))
    count.add("purify", (pc + ps) * channels)
    for decoder, (gh, gw) in ((model.decoder_c, (fh, fw)), (model.decoder_s, (fhs, fws))):
        code, _, _ = flops.layer_stack_flops(decoder.pre_blocks, gh, gw)
        count.add("content_code", code)
        # Each decoder renders two images from its content code.
        count.add("fusion", 2 * flops.fusion_flops(decoder.fusion, gh * gw, channels))
        render, _, _ = flops.layer_stack_flops(decoder.render_layers(), gh, gw)
        count.add("render", 2 * render)
    (hp, wp), (hsp, wsp) = flops.padded_size(h, w), flops.padded_size(hs, ws)
    encoder = model.encoder
    count.add("vgg_outputs", flops.vgg_flops(hp, wp, encoder) + flops.vgg_flops(hsp, wsp, encoder))
    grams = gram_flops(hp, wp, encoder) + gram_flops(hsp, wsp, encoder)
    count.add("gram_outputs", grams)
    count.add("gram_targets", grams)
    return count


def adain_training_flops(h, w, hs, ws, model):
    """Forward FLOPs of `AdaINNet.call` + `compute_loss` for one training pair.

    VGG of both images, AdaIN, the decoder, and the loss encoder on the
    output (its mean/std style loss is elementwise, not counted).

    Returns:
      `FlopCount` with parts `vgg_content`, `vgg_style`, `adain`, `render`,
      `vgg_outputs`.
    """
    count = flops.adain_stylize_flops(h, w, hs, ws, model)
    hp, wp = flops.padded_size(h, w)
    count.add("vgg_outputs", flops.vgg_flops(hp, wp, model.encoder))
    return count


def training_flops(model, content_shape, style_shape=None):
    """Forward FLOPs of one training step (`call` + `compute_loss`) on a batch of pairs.

    Args:
      model: an `ExchangeStyleTransfer` or an `AdaINNet`.
      content_shape: `[B, H, W, 3]`.
      style_shape: `[B, H2, W2, 3]`; default the content shape.

    Returns:
      `FlopCount` for the whole batch (every pair is analysed on its own).
    """
    style_shape = style_shape or content_shape
    b, h, w = content_shape[0], content_shape[1], content_shape[2]
    hs, ws = style_shape[1], style_shape[2]
    if isinstance(model, ExchangeStyleTransfer):
        per = efanet_training_flops(h, w, hs, ws, model)
    elif isinstance(model, AdaINNet):
        per = adain_training_flops(h, w, hs, ws, model)
    else:
        raise TypeError(f"no training FLOP count for {type(model).__name__}")
    return per.scaled(b)


def training_step_flops(forward, convention="3x"):
    """FLOPs of a whole training step (forward + backward) from its forward `FlopCount`.

    Args:
      forward: `training_flops(...)`.
      convention: `"3x"` (backward = 2 x forward everywhere, the usual
        convention of model-FLOP utilisation) or `"needed"` (backward only
        where a gradient is needed; see `NO_BACKWARD_PARTS`).

    The optimizer update (a few FLOPs per weight) is not counted.
    """
    if convention == "3x":
        return 3 * forward.total
    if convention != "needed":
        raise ValueError(f"convention must be one of {STEP_CONVENTIONS}, got {convention!r}")
    total = 0
    for name, part in forward.parts.items():
        if name in NO_BACKWARD_PARTS:
            total += part
        elif name in INPUT_GRADIENT_PARTS:
            total += 2 * part
        else:
            total += 3 * part
    return total
