"""Perceptual-loss evaluation metric of Table 1 (content, Gram style, total, and AdaIN's mean/std style)."""

import keras

from exchange_st.nn import losses, ops
from exchange_st.nn.vgg import FEATURE_NAMES

# Keys of the dict `perceptual_loss` returns, in table order.
METRIC_NAMES = ("content", "style", "total", "meanstd_style")


def encode(encoder, images):
    """VGG features of images as the metric sees them.

    Images are reflect-padded to a multiple of 8 (as the models pad their
    inputs) so an output and its reference always give aligned maps; at the
    evaluation sizes (multiples of 8) this is a no-op.

    Args:
      encoder: a `VGGEncoder` (its `feature_scales` set the units).
      images: `[B, H, W, 3]` float32 in [0, 1].

    Returns:
      List of four maps relu1_1..relu4_1, `[B, H/2^i, W/2^i, C_i]`.
    """
    images = ops.validate_images(images, "images")
    return encoder(ops.pad_to_multiple(images))


def perceptual_loss_from_features(encoder, output, content_feats, style_feats):
    """`perceptual_loss` with the references' features precomputed by `encode`.

    An evaluation over many methods encodes each content and style image
    once instead of once per method.
    """
    out_feats = encode(encoder, output)
    content = losses.content_loss(out_feats[-1], content_feats[-1])
    gram = losses.style_loss(out_feats, style_feats)
    meanstd = losses.mean_std_loss(out_feats, style_feats)
    result = {
        "content": float(content),
        "style": float(sum(gram[n] for n in FEATURE_NAMES)),
        "meanstd_style": float(sum(meanstd[n] for n in FEATURE_NAMES)),
    }
    result["total"] = result["content"] + result["style"]
    for name in FEATURE_NAMES:
        result[f"style/{name}"] = float(gram[name])
        result[f"meanstd_style/{name}"] = float(meanstd[name])
    return result


def perceptual_loss(encoder, output, content, style):
    """Perceptual loss of a stylized image, the metric of Table 1 (after [11]).

    `content` is Eq. 3 for one output: `losses.content_loss`, the mean over
    all elements of the squared difference of the relu4_1 maps of the output
    and of the content image. `style` is Eq. 4 for one output: the sum over
    relu1_1, relu2_1, relu3_1, relu4_1 of `losses.style_loss`, the mean over
    the `C x C` entries of the squared difference of Gram matrices, each Gram
    `F^T F` divided by the number of pixels `h * w` of its map. `total` is
    `content + style` (unweighted, the "Overall Perception" column).
    `meanstd_style` is AdaIN's style loss [11] over the same four layers:
    mean squared difference of channel means plus that of channel standard
    deviations (`losses.mean_std_loss`).

    Units: features are those of `encoder`, i.e. the Keras VGG-19 divided by
    `vgg.FEATURE_SCALES` (mean activation ~1 per layer) when built with
    pretrained weights. The paper's numbers use an unnormalised VGG and an
    unstated reduction, so only the ranking of methods is comparable with
    Table 1, not the values.

    Args:
      encoder: the fixed `VGGEncoder` shared by all methods.
      output: `[B, H, W, 3]` stylized images in [0, 1].
      content: `[B, H, W, 3]` content images (same size as `output`).
      style: `[B or 1, H2, W2, 3]` style images (any size; the evaluation
        uses the same size for all).

    Returns:
      Dict of Python floats, each a mean over the batch: `content`, `style`,
      `total`, `meanstd_style`, and per-layer `style/relu1_1`.. and
      `meanstd_style/relu1_1`...
    """
    output = keras.ops.convert_to_tensor(output)
    content = keras.ops.convert_to_tensor(content)
    if tuple(output.shape[1:3]) != tuple(content.shape[1:3]):
        raise ValueError(
            f"output of size {tuple(output.shape[1:3])} and content of size "
            f"{tuple(content.shape[1:3])} differ; the content loss compares them pixel-aligned."
        )
    return perceptual_loss_from_features(
        encoder, output, encode(encoder, content), encode(encoder, style)
    )
