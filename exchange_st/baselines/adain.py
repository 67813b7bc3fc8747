"""AdaIN baseline (Huang & Belongie [11]) on the project's VGG encoder and decoder layout."""

import keras

from exchange_st.nn import losses as losses_lib
from exchange_st.nn import objective, ops
from exchange_st.nn.decoder import Upsampler
from exchange_st.nn.vgg import FEATURE_NAMES, VGGEncoder

VGG_CHANNELS = 512
# AdaIN's decoder [11] is exactly the upsampling half of the exchange model's
# decoders, so the two methods differ only in what feeds it.
AdaINDecoder = Upsampler


def adain(content_feat, style_feat, eps=1e-5):
    """Adaptive instance normalisation, Eq. 8 of [11].

    `AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y)` with per-image,
    per-channel statistics over the spatial axes. A plain function, not a
    layer: it has no weights (as in keras-io's AdaIN example).

    Args:
      content_feat: `[B, h, w, C]` content features.
      style_feat: `[B, h2, w2, C]` or `[1, h2, w2, C]` style features (one
        style broadcast over the content batch); sizes may differ.
      eps: variance floor, added to both variances.

    Returns:
      `[B, h, w, C]` features with the style's channel means and standard
      deviations (up to `eps`).
    """
    style_feat = keras.ops.cast(style_feat, content_feat.dtype)
    s_mean, s_var = keras.ops.moments(style_feat, axes=[1, 2], keepdims=True)
    return ops.adain(content_feat, s_mean, keras.ops.sqrt(s_var + eps), eps)


@keras.saving.register_keras_serializable(package="exchange_st")
class AdaINNet(objective.ObjectiveMixin, keras.Model):
    """Arbitrary style transfer with AdaIN [11], sharing the exchange model's VGG.

    Encoder -> AdaIN at relu4_1 -> decoder. Only the decoder trains.

    Args:
      vgg_weights: `"imagenet"`, a Keras notop h5 path, or `None` (random).
      vgg_feature_scales: see `VGGEncoder`; `None` resolves from `vgg_weights`.
      upsample_filters: widths of the decoder's three upsampling stages.
      epsilon: variance floor of the AdaIN re-normalisation.
      adain_style_weight: lambda of the training objective `L_c + lambda L_s`
        (10 in [11]'s training script), used by `compute_loss` under `fit`.

    Call arguments:
      content: `[B, H, W, 3]` float32 in [0, 1], any size >= 16, or a batch
        `{"content": ..., "style": ...}` / `(content, style)` as `fit` passes.
      style: `[B, H2, W2, 3]` or `[1, H2, W2, 3]` in [0, 1], any size;
        omitted when `content` holds the pair.

    Returns:
      Dict with `s2c` `[B, H, W, 3]` (linear decoder output cropped to the
      content size), `t` `[B, ceil(H/8), ceil(W/8), 512]` (the AdaIN target
      the decoder renders), and `feats_c`, `feats_s` (the four VGG maps of the
      reflect-padded inputs, reused by `adain_losses`).
    """

    # A release (`exchange_st.saving.release`) stores the decoder; nothing else trains.
    RELEASE_NAME = "adain"
    RELEASE_LEFT_OUT = ()

    # The terms of `adain_losses` but the total (Keras' `loss`).
    LOSS_TERMS = ("content", "style", *(f"style/{name}" for name in FEATURE_NAMES))

    def __init__(
        self,
        vgg_weights="imagenet",
        vgg_feature_scales=None,
        upsample_filters=(256, 128, 64),
        epsilon=1e-5,
        adain_style_weight=10.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vgg_weights = vgg_weights
        self.adain_style_weight = float(adain_style_weight)
        self.upsample_filters = tuple(upsample_filters)
        self.epsilon = epsilon
        policy = self.dtype_policy
        self.encoder = VGGEncoder(vgg_weights, vgg_feature_scales, name="vgg_encoder", dtype=policy)
        self.decoder = Upsampler(self.upsample_filters, name="decoder", dtype=policy)
        self._init_objective()

    def release_layers(self):
        """`[(name, layer)]` of what stylization reads besides the VGG: the decoder."""
        return [("decoder", self.decoder)]

    def loss_terms(self, outputs, content, style):
        """The objective of [11] on the batch (`adain_losses`)."""
        return adain_losses(
            outputs, content, style, self.encoder, style_weight=self.adain_style_weight
        )

    def call(self, content, style=None, training=None):
        content, style = objective.split_pair(content, style)
        content, feats_c, _ = ops.encode(self.encoder, content, "content")
        _, feats_s, _ = ops.encode(self.encoder, style, "style")
        t = adain(feats_c[-1], feats_s[-1], self.epsilon)
        s2c = ops.crop_to(self.decoder(t), content)
        s2c = keras.ops.cast(s2c, "float32")
        return {"s2c": s2c, "t": t, "feats_c": feats_c, "feats_s": feats_s}

    def stylize(self, content, style, alpha=1.0):
        """Inference with the content-style trade-off of [11] (Eq. 14 there).

        `T = (1 - alpha) f_c + alpha AdaIN(f_c, f_s)` before decoding.

        Args:
          content: `[B, H, W, 3]` in [0, 1].
          style: `[B, H2, W2, 3]` or `[1, H2, W2, 3]`.
          alpha: scalar in [0, 1] (Python float or tensor).

        Returns:
          `[B, H, W, 3]` float32 clipped to [0, 1].
        """
        content, f_c, _ = ops.encode(self.encoder, content, "content", output_all=False)
        _, f_s, _ = ops.encode(self.encoder, style, "style", output_all=False)
        t = adain(f_c, f_s, self.epsilon)
        if not (isinstance(alpha, (int, float)) and alpha == 1.0):
            alpha = keras.ops.cast(alpha, t.dtype)
            t = f_c + alpha * (t - f_c)
        image = ops.crop_to(self.decoder(t), content)
        return keras.ops.clip(keras.ops.cast(image, "float32"), 0.0, 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # Weights travel with the saved variables (see VGGEncoder).
                "vgg_weights": None,
                "vgg_feature_scales": self.encoder.feature_scales,
                "upsample_filters": self.upsample_filters,
                "epsilon": self.epsilon,
                "adain_style_weight": self.adain_style_weight,
            }
        )
        return config


def adain_losses(outputs, content, style, encoder, style_weight=10.0):
    """Training objective of [11]: `L = L_c + lambda L_s`.

    Args:
      outputs: `AdaINNet` output dict (`s2c`, `t`, `feats_c`, `feats_s`).
      content: `[B, H, W, 3]` content batch; style: `[B or 1, H2, W2, 3]`.
        Their features are taken from `outputs` (computed once in the
        forward pass); the images are arguments so that this function and
        `losses.compute_losses` share one calling convention. The content is
        used to check that `s2c` matches it in size.
      encoder: the network's fixed `VGGEncoder`.
      style_weight: lambda of [11] (10 in their released training script).

    Returns:
      Dict of scalars: `content` (MSE between relu4_1 of the output and the
      target `t`, which receives no gradient), `style` (mean/std loss summed
      over relu1_1..relu4_1), `style/relu1_1`..`style/relu4_1`, and `total`.
    """
    del style  # Its features are outputs["feats_s"].
    s2c = outputs["s2c"]
    out_hw, content_hw = tuple(s2c.shape[1:3]), tuple(content.shape[1:3])
    if None not in out_hw + content_hw and out_hw != content_hw:
        raise ValueError(
            f"outputs['s2c'] of size {out_hw} does not match the content size {content_hw}"
        )
    # Pad the output the way the content was padded so its maps align with t.
    feats_out = encoder(ops.pad_to_multiple(s2c))
    target = keras.ops.stop_gradient(outputs["t"])
    result = {"content": losses_lib.content_loss(feats_out[-1], target)}
    per_layer = losses_lib.mean_std_loss(feats_out, outputs["feats_s"])
    for name in FEATURE_NAMES:
        result[f"style/{name}"] = per_layer[name]
    result["style"] = sum(per_layer[name] for name in FEATURE_NAMES)
    result["total"] = result["content"] + style_weight * result["style"]
    return result
