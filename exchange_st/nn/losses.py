"""Training objective of Sec. 3.4: perceptual (Eq. 3-4), reconstruction (Eq. 5), exchange (Eq. 6), total (Eq. 7)."""

import dataclasses

import keras

from exchange_st.nn import ops
from exchange_st.nn.vgg import FEATURE_NAMES

ORTHOGONALITY_MODES = ("abs", "square", "raw")
PERCEPTUAL_NORMS = ("squared", "rms")
EXCHANGE_TARGETS = ("trainable", "fixed", "detached")
RECONSTRUCTION_SPACES = ("rgb", "opponent")
# Keeps the gradient of the RMS finite where a difference is exactly zero.
_RMS_EPSILON = 1e-8


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights and choices of the objective.

    Attributes:
      content_weight, style_weight, rec_weight, com_weight: the lambdas of
        Eq. 7, "respectively set as 1, 2, 5, and 7". Setting a weight to 0
        gives the loss ablations of Fig. 7 (`Lp` only, `Lp + Lrec`).
      orthogonality: how the `f_com . f_uni` terms of Eq. 6 are kept from
        running to minus infinity: `"abs"` (|dot|, default), `"square"`
        (dot squared, the soft orthogonality of [2]) or `"raw"` (as printed;
        unbounded below, for the record only).
      perceptual_norm: reduction of the `||.||_2` of Eq. 3-4: `"squared"`
        (mean squared difference, the code of [11]; default) or `"rms"`
        (root of it: the norm itself, normalised by the element count as
        the L1 terms are).
      exchange_targets: whether the codes `f_c`, `f_s` that Eq. 6's
        reconstruction terms compare `f*` with receive that term's gradient:
        `"trainable"` (as written; default), `"fixed"` (a stop-gradient on
        the targets, so Eq. 6 cannot lower its value by shrinking the
        compressor's codes) or `"detached"` (Eq. 6 trains the exchange path
        only, from the FC layers on, and never the compressor: the model
        recomputes that path from stop-gradient codes for the loss,
        `outputs["eq6"]`).
      reconstruction_space: the colour basis of Eq. 5's L1 norm: `"rgb"`
        (as written; default) or `"opponent"` (beyond the paper: the same
        L1 after an orthonormal rotation to one grey and two colour-opponent
        axes, `reconstruction_loss`).
    """

    content_weight: float = 1.0
    style_weight: float = 2.0
    rec_weight: float = 5.0
    com_weight: float = 7.0
    orthogonality: str = "abs"
    perceptual_norm: str = "squared"
    exchange_targets: str = "trainable"
    reconstruction_space: str = "rgb"

    def __post_init__(self):
        if self.orthogonality not in ORTHOGONALITY_MODES:
            raise ValueError(
                f"orthogonality must be one of {ORTHOGONALITY_MODES}, got {self.orthogonality!r}"
            )
        if self.perceptual_norm not in PERCEPTUAL_NORMS:
            raise ValueError(
                f"perceptual_norm must be one of {PERCEPTUAL_NORMS}, got {self.perceptual_norm!r}"
            )
        if self.exchange_targets not in EXCHANGE_TARGETS:
            raise ValueError(
                f"exchange_targets must be one of {EXCHANGE_TARGETS}, got {self.exchange_targets!r}"
            )
        if self.reconstruction_space not in RECONSTRUCTION_SPACES:
            raise ValueError(
                f"reconstruction_space must be one of {RECONSTRUCTION_SPACES}, "
                f"got {self.reconstruction_space!r}"
            )


def _reduce_squares(squares, squared):
    mse = keras.ops.mean(squares)
    return mse if squared else keras.ops.sqrt(mse + _RMS_EPSILON)


def content_loss(features, target, squared=True):
    """One term of Eq. 3: mean squared error of relu4_1 maps `[B, h, w, 512]`.

    The paper's `||.||_2` follows [11, 29], whose code averages the squared
    difference over all elements; the mean keeps the value independent of
    the image size. `squared=False` returns its root (`LossConfig.perceptual_norm`).
    """
    diff = keras.ops.cast(features, "float32") - keras.ops.cast(target, "float32")
    return _reduce_squares(keras.ops.square(diff), squared)


def gram_matrix(features):
    """Gram matrix `[B, C, C]` of `[B, h, w, C]`, divided by the pixel count h*w."""
    f = keras.ops.cast(features, "float32")
    shape = keras.ops.shape(f)
    f = keras.ops.reshape(f, (shape[0], -1, shape[3]))
    return ops.pixel_gram(f, f) / keras.ops.cast(keras.ops.shape(f)[1], "float32")


def style_loss(features, targets, squared=True):
    """One term of Eq. 4 per layer: mean squared error of Gram matrices.

    Args:
      features, targets: lists of maps relu1_1..relu4_1 (the set L).
      squared: `False` returns the root of each mean (`LossConfig.perceptual_norm`).

    Returns:
      Dict `{layer name: loss}`.
    """
    return {
        name: _reduce_squares(keras.ops.square(gram_matrix(f) - gram_matrix(t)), squared)
        for name, f, t in zip(FEATURE_NAMES, features, targets)
    }


def mean_std_loss(features, targets, eps=1e-5):
    """Style loss of AdaIN [11] (Eq. 13 there; its baseline's objective and Table 1's extra column): match channel means and standard deviations.

    Per layer: `MSE(mu(f), mu(t)) + MSE(sigma(f), sigma(t))`, each mean squared
    error averaged over batch and channels, as in AdaIN's released code.

    Args:
      features, targets: lists of maps relu1_1..relu4_1, `[B, h, w, C]`;
        `targets` may have batch 1 and any spatial size.
      eps: variance floor inside the square root (keeps its gradient finite).

    Returns:
      Dict `{layer name: loss}` of scalar float32 tensors.
    """
    out = {}
    for name, f, t in zip(FEATURE_NAMES, features, targets):
        f_mean, f_var = keras.ops.moments(keras.ops.cast(f, "float32"), axes=[1, 2])
        t_mean, t_var = keras.ops.moments(keras.ops.cast(t, "float32"), axes=[1, 2])
        f_std, t_std = keras.ops.sqrt(f_var + eps), keras.ops.sqrt(t_var + eps)
        out[name] = keras.ops.mean(keras.ops.square(f_mean - t_mean)) + keras.ops.mean(
            keras.ops.square(f_std - t_std)
        )
    return out


# Rows: the grey axis and two colour-opponent axes (red-green, yellow-blue),
# orthonormal, so a difference keeps its Euclidean length in either basis.
OPPONENT_BASIS = (
    (3**-0.5, 3**-0.5, 3**-0.5),
    (2**-0.5, -(2**-0.5), 0.0),
    (6**-0.5, 6**-0.5, -2 * 6**-0.5),
)


def reconstruction_loss(images, target, space="rgb"):
    """One term of Eq. 5: L1 distance of images, averaged over pixels.

    The gradient of an L1 norm is the sign of each channel's difference. In
    RGB a pixel's grey-level error, where it is the larger part, sets that
    sign in all three channels, so a blurry reconstruction's grey errors hide
    its colour errors and the decoder learns brightness but not hue
    (docs/experiments/style_conditioning.md). `space="opponent"` takes the
    same L1 after rotating the difference onto `OPPONENT_BASIS`, where each
    colour-opponent axis has its own sign.

    Args:
      images, target: `[B, H, W, 3]`.
      space: `"rgb"` (Eq. 5 as written) or `"opponent"`.

    Returns:
      Scalar float32.
    """
    diff = keras.ops.cast(images, "float32") - keras.ops.cast(target, "float32")
    if space == "opponent":
        diff = keras.ops.matmul(diff, keras.ops.transpose(keras.ops.array(OPPONENT_BASIS)))
    elif space != "rgb":
        raise ValueError(f"space must be one of {RECONSTRUCTION_SPACES}, got {space!r}")
    return keras.ops.mean(keras.ops.abs(diff))


def exchange_loss(outputs, orthogonality="abs", targets="trainable"):
    """Eq. 6 over the last Feature Exchange block's outputs.

    `L_com = f_com . f_uni_c + f_com . f_uni_s + ||f_c - f*_c||_1 + ||f_s - f*_s||_1`
    with dot products and L1 norms over the 256 code dimensions as written,
    averaged over the batch. `targets="fixed"` stops the gradient at `f_c`,
    `f_s` in the two reconstruction terms (`LossConfig.exchange_targets`).

    Returns:
      Dict with `orthogonality`, `reconstruction` and their sum `total`.
    """
    # The model's own copy of the exchange path for Eq. 6, where it keeps one
    # (`exchange_targets="detached"`).
    if targets == "detached" and "eq6" not in outputs:
        raise ValueError(
            "exchange_targets='detached' needs the model's own copy of the exchange path "
            "(outputs['eq6']): build the model with exchange_targets='detached' too"
        )
    outputs = outputs.get("eq6", outputs)
    f_com = keras.ops.cast(outputs["f_com"], "float32")

    def orth(f_uni):
        dot = keras.ops.sum(f_com * keras.ops.cast(f_uni, "float32"), axis=-1)
        if orthogonality == "abs":
            dot = keras.ops.abs(dot)
        elif orthogonality == "square":
            dot = keras.ops.square(dot)
        return keras.ops.mean(dot)

    def l1(f, f_star):
        if targets in ("fixed", "detached"):
            f = keras.ops.stop_gradient(f)
        diff = keras.ops.cast(f, "float32") - keras.ops.cast(f_star, "float32")
        return keras.ops.mean(keras.ops.sum(keras.ops.abs(diff), axis=-1))

    orth_term = orth(outputs["f_uni_c"]) + orth(outputs["f_uni_s"])
    rec_term = l1(outputs["f_c"], outputs["f_c_rec"]) + l1(outputs["f_s"], outputs["f_s_rec"])
    return {"orthogonality": orth_term, "reconstruction": rec_term, "total": orth_term + rec_term}


def compute_losses(outputs, content, style, encoder, config=LossConfig()):
    """All terms of Eq. 7 for one batch of pairs.

    Args:
      outputs: the model's output dict (four images, codes, input features).
      content: `[B, H, W, 3]` `I_c`; style: `[B, H2, W2, 3]` `I_s`.
      encoder: the model's fixed `VGGEncoder` (E of Eq. 3, G of Eq. 4).
      config: `LossConfig`.

    Returns:
      Dict of scalars: `content`, `style`, `style/relu1_1` .. `style/relu4_1`,
      `rec`, `com`, `com/orthogonality`, `com/reconstruction` and `total`
      (Eq. 7). Every term is a per-example mean, so under a distribution
      strategy the caller divides by the number of replicas only.
    """
    feats_c, feats_s = outputs["feats_c"], outputs["feats_s"]
    # The outputs have the inputs' sizes; pad them like the inputs were so
    # their features align with `feats_c` / `feats_s`.
    e_s2c = encoder(ops.pad_to_multiple(outputs["s2c"]))
    e_c2s = encoder(ops.pad_to_multiple(outputs["c2s"]))

    squared = config.perceptual_norm == "squared"
    losses = {}
    losses["content"] = content_loss(e_s2c[-1], feats_c[-1], squared) + content_loss(
        e_c2s[-1], feats_s[-1], squared
    )  # Eq. 3
    style_s2c = style_loss(e_s2c, feats_s, squared)
    style_c2s = style_loss(e_c2s, feats_c, squared)
    for name in FEATURE_NAMES:
        losses[f"style/{name}"] = style_s2c[name] + style_c2s[name]
    losses["style"] = sum(losses[f"style/{name}"] for name in FEATURE_NAMES)  # Eq. 4
    space = config.reconstruction_space
    losses["rec"] = reconstruction_loss(outputs["c2c"], content, space) + reconstruction_loss(
        outputs["s2s"], style, space
    )  # Eq. 5
    com = exchange_loss(outputs, config.orthogonality, config.exchange_targets)  # Eq. 6
    losses["com"] = com["total"]
    losses["com/orthogonality"] = com["orthogonality"]
    losses["com/reconstruction"] = com["reconstruction"]
    losses["total"] = (
        config.content_weight * losses["content"]
        + config.style_weight * losses["style"]
        + config.rec_weight * losses["rec"]
        + config.com_weight * losses["com"]
    )  # Eq. 7
    return losses
