"""AdaIN baseline (Huang & Belongie [11]) on the project's VGG encoder and decoder layout."""

import keras

from exchange_st import losses as losses_lib
from exchange_st import objective
from exchange_st import ops
from exchange_st.vgg import FEATURE_NAMES, VGGEncoder

VGG_CHANNELS = 512
# Conv layers per upsampling stage: the mirror of VGG-19 blocks 4 (its first
# conv only), 3, 2 and 1, exactly as AdaIN's decoder and `decoder.Decoder`.
_CONVS_PER_STAGE = (4, 2, 2)


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
    c_mean, c_var = keras.ops.moments(content_feat, axes=[1, 2], keepdims=True)
    style_feat = keras.ops.cast(style_feat, content_feat.dtype)
    s_mean, s_var = keras.ops.moments(style_feat, axes=[1, 2], keepdims=True)
    normalised = (content_feat - c_mean) * keras.ops.rsqrt(c_var + eps)
    return normalised * keras.ops.sqrt(s_var + eps) + s_mean


def mean_std_loss(features, targets, eps=1e-5):
    """Style loss of [11] (Eq. 13 there): match channel means and standard deviations.

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


@keras.saving.register_keras_serializable(package="exchange_st")
class AdaINDecoder(keras.layers.Layer):
    """AdaIN's decoder [11]: relu4_1 features back to RGB.

    The same layout as the upsampling half of `decoder.Decoder` (3 x 3 convs
    with ReLU, three 2x nearest-neighbour upsamplings, a final linear 3 x 3
    conv to RGB), so AdaIN and the exchange model differ only in what feeds
    the upsampling. Zero "same" padding as in `decoder.Decoder` (the original
    AdaIN uses reflection padding).

    Args:
      upsample_filters: widths of the three upsampling stages.

    Call arguments:
      features: `[B, h, w, 512]` (the AdaIN target `t`).

    Returns:
      `[B, 8h, 8w, 3]` image, linear (not clipped).
    """

    def __init__(self, upsample_filters=(256, 128, 64), **kwargs):
        super().__init__(**kwargs)
        if len(upsample_filters) != len(_CONVS_PER_STAGE):
            raise ValueError(
                f"upsample_filters needs {len(_CONVS_PER_STAGE)} widths, got {upsample_filters}"
            )
        self.upsample_filters = tuple(upsample_filters)
        policy = self.dtype_policy
        # Each sub-layer is an attribute, not only a list entry: with Keras
        # 3.15 on TensorFlow, layers held in a list are not dependencies of a
        # tf.train.Checkpoint, so their weights would be missing from it.
        self._up_layer_names = []
        for stage, (filters, n_convs) in enumerate(zip(self.upsample_filters, _CONVS_PER_STAGE)):
            self._add_up_layer(self._conv(filters, f"up{stage}_in"))
            self._add_up_layer(
                keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{stage}", dtype=policy)
            )
            for i in range(n_convs - 1):
                self._add_up_layer(self._conv(filters, f"up{stage}_conv{i}"))
        self.to_rgb = keras.layers.Conv2D(3, 3, padding="same", name="to_rgb", dtype=policy)

    def _add_up_layer(self, layer):
        setattr(self, layer.name, layer)
        self._up_layer_names.append(layer.name)

    @property
    def up_layers(self):
        """The convolutions and upsamplings before `to_rgb`, in call order."""
        return [getattr(self, name) for name in self._up_layer_names]

    def _conv(self, filters, name):
        return keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=name, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.up_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.to_rgb.build(shape)
        self.built = True

    def call(self, features, training=None):
        x = features
        for layer in self.up_layers:
            x = layer(x)
        return self.to_rgb(x)

    def get_config(self):
        config = super().get_config()
        config.update({"upsample_filters": self.upsample_filters})
        return config


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
        self.encoder = VGGEncoder(
            vgg_weights, vgg_feature_scales, name="vgg_encoder", dtype=policy
        )
        self.decoder = AdaINDecoder(self.upsample_filters, name="decoder", dtype=policy)
        self._init_objective()

    def loss_terms(self, outputs, content, style):
        """The objective of [11] on the batch (`adain_losses`)."""
        return adain_losses(
            outputs, content, style, self.encoder, style_weight=self.adain_style_weight
        )

    def build(self, content_shape=None, style_shape=None):
        if self.built:
            return
        # Tracing a tiny pair creates every variable (as ExchangeStyleTransfer).
        self.built = True
        image = keras.ops.zeros((1, 32, 32, 3))
        self(image, image)

    def _encode(self, images, name, output_all=True):
        images = ops.validate_images(images, name)
        return images, self.encoder(ops.pad_to_multiple(images), output_all=output_all)

    def call(self, content, style=None, training=None):
        content, style = objective.split_pair(content, style)
        content, feats_c = self._encode(content, "content")
        _, feats_s = self._encode(style, "style")
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
        content, f_c = self._encode(content, "content", output_all=False)
        _, f_s = self._encode(style, "style", output_all=False)
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
    per_layer = mean_std_loss(feats_out, outputs["feats_s"])
    for name in FEATURE_NAMES:
        result[f"style/{name}"] = per_layer[name]
    result["style"] = sum(per_layer[name] for name in FEATURE_NAMES)
    result["total"] = result["content"] + style_weight * result["style"]
    return result
