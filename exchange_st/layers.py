"""Keras layers of the exchangeable-feature network (Sec. 3.1-3.3, Fig. 3 and 4)."""

import keras

from exchange_st import ops

FUSION_MODES = ("ours", "adain", "concat")


def track_layer_list(owner, prefix, layer_list):
    """Names each layer of a list as an attribute of `owner`; returns the list.

    Keras 3 tracks layer lists for `.keras` saving but leaves them out of the
    object graph TensorFlow's `train.Checkpoint` walks, so their variables
    would be silently missing from training checkpoints. Attributes are walked.
    """
    for i, layer in enumerate(layer_list):
        setattr(owner, f"{prefix}_{i}", layer)
    return layer_list


def masked_covariance(features, mask=None, epsilon=1e-5):
    """Channel covariance of a feature map, optionally over masked pixels only.

    Sec. 3.1: "a 512 x 512 covariance matrix ... treating the i-th channel as
    the i-th element of a random vector", i.e. pixels are the samples.

    Args:
      features: `[B, H, W, C]`.
      mask: optional `[B, H, W, 1]` non-negative pixel weights (a mask already
        at the feature resolution). Only weighted pixels count (Fig. 10).
      epsilon: guards the division when a mask is empty.

    Returns:
      `[B, C, C]` float32 covariance, mean-centred over (weighted) pixels and
      divided by the (weighted) pixel count.
    """
    f = keras.ops.cast(features, "float32")
    shape = keras.ops.shape(f)
    f = keras.ops.reshape(f, (shape[0], -1, shape[3]))
    if mask is None:
        # Unweighted: multiplying by ones would cost two more copies of the
        # [B, h*w, C] map (1 GiB of peak memory for a 4096 x 4096 image).
        centred = f - keras.ops.mean(f, axis=1, keepdims=True)
        count = keras.ops.cast(keras.ops.shape(f)[1], "float32")
        return ops.pixel_gram(centred, centred) / count
    w = keras.ops.reshape(keras.ops.cast(mask, "float32"), (shape[0], -1, 1))
    count = keras.ops.maximum(keras.ops.sum(w, axis=1, keepdims=True), epsilon)
    mean = keras.ops.sum(w * f, axis=1, keepdims=True) / count
    centred = f - mean
    return ops.pixel_gram(centred * w, centred) / count


@keras.saving.register_keras_serializable(package="exchange_st")
class CovarianceCompressor(keras.layers.Layer):
    """Covariance of the relu4_1 map -> conv layers -> FC -> 256-D code (Sec. 3.1).

    The paper says "multiple convolution layers, followed by a fully-connected
    layer"; the count, widths and strides are not given. Each conv halves the
    512 x 512 matrix (3 x 3, stride 2, ReLU) so that the final FC stays small
    (BUILD_NOTES.md, "Covariance compressor").

    Args:
      code_dim: size of the output code (`f_c`, `f_s`), 256 in the paper.
      filters: output channels of the stride-2 conv layers.
      kernel_size: conv kernel size.

    Call arguments:
      features: `[B, h, w, C]` VGG relu4_1 map (`f_vgg_c` or `f_vgg_s`).
      pixel_weights: optional `[B, h, w, 1]` mask at the feature resolution.

    Returns:
      `[B, code_dim]` code.
    """

    def __init__(self, code_dim=256, filters=(32, 64, 128, 128, 64), kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.code_dim = code_dim
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        self.convs = [
            keras.layers.Conv2D(
                n, kernel_size, strides=2, padding="same", activation="relu",
                name=f"conv{i}", dtype=self.dtype_policy,
            )
            for i, n in enumerate(self.filters)
        ]
        track_layer_list(self, "conv", self.convs)
        self.flatten = keras.layers.Flatten(dtype=self.dtype_policy)
        self.fc = keras.layers.Dense(code_dim, name="fc", dtype=self.dtype_policy)

    def build(self, features_shape, pixel_weights_shape=None):
        channels = features_shape[-1]
        shape = (None, channels, channels, 1)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.flatten.build(shape)
        self.fc.build(self.flatten.compute_output_shape(shape))
        self.built = True

    def call(self, features, pixel_weights=None):
        cov = masked_covariance(features, pixel_weights)[..., None]
        x = keras.ops.cast(cov, self.compute_dtype)
        for conv in self.convs:
            x = conv(x)
        return self.fc(self.flatten(x))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"code_dim": self.code_dim, "filters": self.filters, "kernel_size": self.kernel_size}
        )
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class ResidualMessagePassing(keras.layers.Layer):
    """Residual Message Passing unit (Sec. 3.2, Fig. 4b).

    Four learnable 256 x 256 weights: the two inputs are weighted by the first
    two and passed through ReLU, the results are summed into a message `m`,
    and two further weights give the attention gates of the two residuals:

        m   = relu(W1 a) + relu(W2 b)
        r_a = sigmoid(W3 m) * m,   r_b = sigmoid(W4 m) * m

    The gate non-linearity is not named in the paper; a sigmoid is what
    "attentional gating ... determine how much information to output" reads
    as. Gate biases start at `gate_bias_init` (default -5, sigmoid ~ 0.007)
    so that a fresh block is nearly the identity, which is the paper's claim
    that blocks chain "without breaking its initial behavior".

    Args:
      units: feature size (256 in the paper).
      gate_bias_init: initial bias of the two gating layers.

    Call arguments:
      inputs: pair `(a, b)` of `[B, units]`.

    Returns:
      Pair of residuals `(r_a, r_b)`, each `[B, units]`.
    """

    def __init__(self, units=256, gate_bias_init=-5.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gate_bias_init = gate_bias_init
        dense = dict(units=units, dtype=self.dtype_policy)
        gate = dict(
            dense,
            activation="sigmoid",
            bias_initializer=keras.initializers.Constant(gate_bias_init),
        )
        self.w1 = keras.layers.Dense(activation="relu", name="w1", **dense)
        self.w2 = keras.layers.Dense(activation="relu", name="w2", **dense)
        self.w3 = keras.layers.Dense(name="w3_gate", **gate)
        self.w4 = keras.layers.Dense(name="w4_gate", **gate)

    def build(self, input_shape):
        shape = input_shape[0]
        for layer in (self.w1, self.w2):
            layer.build(shape)
        for layer in (self.w3, self.w4):
            layer.build(shape[:-1] + (self.units,))
        self.built = True

    def call(self, inputs):
        a, b = inputs
        message = self.w1(a) + self.w2(b)
        return self.w3(message) * message, self.w4(message) * message

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "gate_bias_init": self.gate_bias_init})
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class FeatureExchangeBlock(keras.layers.Layer):
    """Feature Exchange block (Sec. 3.2, Fig. 4a).

    `f_com` meets each unique feature in its own residual message passing unit
    and is updated with both units' residuals; each unique feature is updated
    with the residual its unit returns for it:

        (r_uni_c, r_com_c) = RMP_c(f_uni_c, f_com)
        (r_com_s, r_uni_s) = RMP_s(f_com, f_uni_s)
        f'_com = f_com + r_com_c + r_com_s
        f'_uni_c = f_uni_c + r_uni_c,   f'_uni_s = f_uni_s + r_uni_s

    Args:
      units: feature size (256).
      gate_bias_init: passed to both units.

    Call arguments:
      inputs: triple `(f_com, f_uni_c, f_uni_s)`, each `[B, units]`.

    Returns:
      Refined triple `(f'_com, f'_uni_c, f'_uni_s)`, each `[B, units]`.
    """

    def __init__(self, units=256, gate_bias_init=-5.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gate_bias_init = gate_bias_init
        self.rmp_c = ResidualMessagePassing(
            units, gate_bias_init, name="rmp_c", dtype=self.dtype_policy
        )
        self.rmp_s = ResidualMessagePassing(
            units, gate_bias_init, name="rmp_s", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        shape = input_shape[0]
        self.rmp_c.build((shape, shape))
        self.rmp_s.build((shape, shape))
        self.built = True

    def call(self, inputs):
        f_com, f_uni_c, f_uni_s = inputs
        r_uni_c, r_com_c = self.rmp_c((f_uni_c, f_com))
        r_com_s, r_uni_s = self.rmp_s((f_com, f_uni_s))
        return f_com + r_com_c + r_com_s, f_uni_c + r_uni_c, f_uni_s + r_uni_s

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "gate_bias_init": self.gate_bias_init})
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class StyleHeads(keras.layers.Layer):
    """The three dedicated FC layers on `concat(f'_com, f_x)` (Sec. 3.1).

    `v_w` is a channel-attention weight for content purification, so it gets
    a sigmoid; `v_c` and `v_r` are linear because Eq. 1-2 use them as signed
    projection vectors. With `fusion_rank=k > 1` (beyond the paper, see
    `CSFusion`) `v_c` and `v_r` hold k projections each.

    The fresh heads' inputs are small (std ~0.05), so `v_c` and `v_r` are
    their biases at first. Zero biases (Keras' default) make `R_fusion` of
    Eq. 2 start at 1/17 of the content code's scale and grow only at Adam's
    pace. With `code_rms` set, the biases start as random projections that
    keep the scale: `v_c` entries ~ N(0, 1 / (C code_rms^2)) give `R_pool`
    of unit variance, `v_r` entries ~ N(0, code_rms^2 / k) give `R_fusion`
    the content code's RMS (BUILD_NOTES.md, "Trainability").

    Args:
      channels: size of the three vectors (512, the VGG channel count).
      fusion_rank: projections in `v_c`/`v_r` (1 in the paper).
      code_rms: expected RMS of the content code `R_pool` is computed from,
        or `None` for zero biases (the AdaIN and concat fusion modes, whose
        `v_c`/`v_r` are not projections).

    Call arguments:
      inputs: pair `(f_com, f_x)`, each `[B, 256]`.

    Returns:
      Dict with `v_w` `[B, channels]`, `v_c` (the 512 x k columns) and `v_r`
      (the k x 512 rows), each stored flat as `[B, k * channels]`.
    """

    def __init__(self, channels=512, fusion_rank=1, code_rms=None, **kwargs):
        super().__init__(**kwargs)
        if fusion_rank < 1:
            raise ValueError(f"fusion_rank must be >= 1, got {fusion_rank}")
        self.channels = channels
        self.fusion_rank = fusion_rank
        self.code_rms = code_rms
        c_bias, r_bias = "zeros", "zeros"
        if code_rms is not None:
            c_bias = keras.initializers.RandomNormal(stddev=1.0 / (channels**0.5 * code_rms))
            r_bias = keras.initializers.RandomNormal(stddev=code_rms / fusion_rank**0.5)
        self.fc_w = keras.layers.Dense(
            channels, activation="sigmoid", name="fc_v_w", dtype=self.dtype_policy
        )
        self.fc_c = keras.layers.Dense(
            channels * fusion_rank, bias_initializer=c_bias, name="fc_v_c", dtype=self.dtype_policy
        )
        self.fc_r = keras.layers.Dense(
            channels * fusion_rank, bias_initializer=r_bias, name="fc_v_r", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        shape = tuple(input_shape[0][:-1]) + (input_shape[0][-1] + input_shape[1][-1],)
        for layer in (self.fc_w, self.fc_c, self.fc_r):
            layer.build(shape)
        self.built = True

    def call(self, inputs):
        x = keras.ops.concatenate(inputs, axis=-1)
        return {"v_w": self.fc_w(x), "v_c": self.fc_c(x), "v_r": self.fc_r(x)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {"channels": self.channels, "fusion_rank": self.fusion_rank, "code_rms": self.code_rms}
        )
        return config


def purify(f_vgg, v_w):
    """Channel-wise content purification `f_pur = f_vgg * v_w` (Sec. 3.1).

    Args:
      f_vgg: `[B, h, w, C]`.
      v_w: `[B, C]`.

    Returns:
      `[B, h, w, C]`.
    """
    return f_vgg * keras.ops.cast(v_w, f_vgg.dtype)[:, None, None, :]


@keras.saving.register_keras_serializable(package="exchange_st")
class CSFusion(keras.layers.Layer):
    """Content-style fusion (Sec. 3.3) and the two ablation modes (Fig. 8).

    `"ours"`, Eq. 1 and 2: channel compression then expansion,

        R_pool   = f_pur . v_c     ([N, 512] x [512, 1] -> [N, 1])
        R_fusion = R_pool . v_r    ([N, 1] x [1, 512] -> [N, 512])

    With `rank=k` (beyond the paper; its conclusion notes that the rank-1
    map "may have discarded too much information") `v_c` is `512 x k` and
    `v_r` is `k x 512`: k pooled channels are expanded and summed. `k=1` is
    exactly Eq. 1-2.

    `"adain"`: `v_c` and `v_r` are the target channel mean and standard
    deviation of an AdaIN [11] re-normalisation of `f_pur`.

    `"concat"`: the style vectors are tiled over the pixels, concatenated with
    `f_pur` and mixed back to `channels` by a 1 x 1 convolution (the
    expansion-concatenation of Lee et al. [16]). A 1 x 1 conv over a tiled
    vector is the same as adding a per-image bias, which is how it is
    computed, so no `[B, h, w, 3 * 512]` tensor is ever built.

    Args:
      mode: one of `"ours"`, `"adain"`, `"concat"`.
      channels: feature channels (512).
      epsilon: variance floor of the AdaIN mode.
      rank: projections of the `"ours"` mode (1 in the paper); the other
        modes take rank 1 only.

    Call arguments:
      inputs: triple `(f_pur [B, h, w, C], v_c [B, k * C], v_r [B, k * C])`.

    Returns:
      `R_fusion`, `[B, h, w, C]`.
    """

    def __init__(self, mode="ours", channels=512, epsilon=1e-5, rank=1, **kwargs):
        super().__init__(**kwargs)
        if mode not in FUSION_MODES:
            raise ValueError(f"fusion mode must be one of {FUSION_MODES}, got {mode!r}")
        if rank < 1 or (rank > 1 and mode != "ours"):
            raise ValueError(f"fusion rank must be 1, or >= 1 with mode 'ours'; got {rank}")
        self.mode = mode
        self.channels = channels
        self.epsilon = epsilon
        self.rank = rank
        if mode == "concat":
            self.mix_content = keras.layers.Dense(
                channels, name="mix_content", dtype=self.dtype_policy
            )
            self.mix_style = keras.layers.Dense(
                channels, use_bias=False, name="mix_style", dtype=self.dtype_policy
            )

    def build(self, input_shape):
        if self.mode == "concat":
            self.mix_content.build(input_shape[0])
            self.mix_style.build((None, 2 * self.channels))
        self.built = True

    def call(self, inputs):
        f_pur, v_c, v_r = inputs
        if self.mode == "ours" and self.rank > 1:
            shape = (-1, self.rank, self.channels)
            v_c = keras.ops.reshape(keras.ops.cast(v_c, f_pur.dtype), shape)
            v_r = keras.ops.reshape(keras.ops.cast(v_r, f_pur.dtype), shape)
            r_pool = keras.ops.einsum("bhwc,bkc->bhwk", f_pur, v_c)  # Eq. 1, k columns
            return keras.ops.einsum("bhwk,bkc->bhwc", r_pool, v_r)  # Eq. 2, k rows
        v_c = keras.ops.cast(v_c, f_pur.dtype)[:, None, None, :]
        v_r = keras.ops.cast(v_r, f_pur.dtype)[:, None, None, :]
        if self.mode == "ours":
            r_pool = keras.ops.sum(f_pur * v_c, axis=-1, keepdims=True)  # Eq. 1
            return r_pool * v_r  # Eq. 2
        if self.mode == "adain":
            mean, var = keras.ops.moments(f_pur, axes=[1, 2], keepdims=True)
            normalised = (f_pur - mean) * keras.ops.rsqrt(var + self.epsilon)
            return normalised * v_r + v_c
        style = keras.ops.concatenate([v_c, v_r], axis=-1)
        return self.mix_content(f_pur) + self.mix_style(style)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mode": self.mode,
                "channels": self.channels,
                "epsilon": self.epsilon,
                "rank": self.rank,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class ResidualBlock(keras.layers.Layer):
    """conv-ReLU-conv with an identity skip, at constant width (Sec. 3.5).

    With `zero_init=True` the second conv starts at zero, so a fresh block is
    the identity (as in Goyal et al.'s zero-gamma and Fixup initialisations
    of normalisation-free residual networks): a fresh stack of five blocks
    otherwise scales its input unpredictably (BUILD_NOTES.md, "Trainability").

    Args:
      filters: channels in and out.
      kernel_size: conv kernel size.
      zero_init: start the residual branch at zero.

    Call arguments:
      x: `[B, h, w, filters]`.

    Returns:
      `[B, h, w, filters]`.
    """

    def __init__(self, filters=512, kernel_size=3, zero_init=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.zero_init = zero_init
        self.conv1 = keras.layers.Conv2D(
            filters, kernel_size, padding="same", activation="relu", name="conv1",
            dtype=self.dtype_policy,
        )
        self.conv2 = keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            kernel_initializer="zeros" if zero_init else "glorot_uniform",
            name="conv2",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.conv1.build(input_shape)
        self.conv2.build(input_shape[:-1] + (self.filters,))
        self.built = True

    def call(self, x):
        return x + self.conv2(self.conv1(x))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filters": self.filters, "kernel_size": self.kernel_size, "zero_init": self.zero_init}
        )
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class Decoder(keras.layers.Layer):
    """One branch decoder (Sec. 3.5): residual blocks, fusion, residual blocks, upsampling.

    "three residual blocks to process the content codes first. After the
    fusion of style and content features, two extra residual blocks ...
    followed by several upsampling operations. Nearest-neighbor upscaling plus
    convolution." The upsampling half mirrors VGG-19 down to relu1_1, as in
    AdaIN's decoder [11]: three 2x nearest-neighbour upsamplings back to the
    input resolution, each followed by 3 x 3 convs.

    The decoder is split into `content_code`, `fuse` and `render` so that
    Eq. 8 can blend two fused maps of the same decoder before rendering.

    Args:
      channels: width of the content code (512, relu4_1).
      num_pre_blocks: residual blocks before fusion (3).
      num_post_blocks: residual blocks after fusion (2).
      fusion_mode: see `CSFusion`.
      upsample_filters: widths of the three upsampling stages.
      fusion_rank: see `CSFusion` (1 in the paper).
      zero_init_residual: residual blocks start as the identity
        (`ResidualBlock(zero_init=True)`).
      output_bias: initial bias of the RGB output conv, i.e. the colour a
        fresh decoder paints everywhere; `None` keeps zeros (black).

    Call arguments:
      inputs: triple `(f_pur [B, h, w, 512], v_c [B, 512], v_r [B, 512])`.

    Returns:
      `[B, 8h, 8w, 3]` image (linear output; values near [0, 1]).
    """

    def __init__(
        self,
        channels=512,
        num_pre_blocks=3,
        num_post_blocks=2,
        fusion_mode="ours",
        upsample_filters=(256, 128, 64),
        fusion_rank=1,
        zero_init_residual=False,
        output_bias=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = channels
        self.fusion_rank = fusion_rank
        self.zero_init_residual = zero_init_residual
        self.output_bias = None if output_bias is None else tuple(float(v) for v in output_bias)
        self.num_pre_blocks = num_pre_blocks
        self.num_post_blocks = num_post_blocks
        self.fusion_mode = fusion_mode
        self.upsample_filters = tuple(upsample_filters)
        policy = self.dtype_policy
        self.pre_blocks = [
            ResidualBlock(channels, zero_init=zero_init_residual, name=f"pre_res{i}", dtype=policy)
            for i in range(num_pre_blocks)
        ]
        self.fusion = CSFusion(
            fusion_mode, channels, rank=fusion_rank, name="fusion", dtype=policy
        )
        self.post_blocks = [
            ResidualBlock(
                channels, zero_init=zero_init_residual, name=f"post_res{i}", dtype=policy
            )
            for i in range(num_post_blocks)
        ]
        # Mirror of VGG-19 blocks 3, 2, 1: (conv to the stage width), upsample,
        # then the remaining convs of that VGG block at the new resolution.
        convs_per_stage = (4, 2, 2)
        self.up_layers = []
        for stage, (filters, n_convs) in enumerate(zip(self.upsample_filters, convs_per_stage)):
            self.up_layers.append(self._conv(filters, f"up{stage}_in"))
            self.up_layers.append(
                keras.layers.UpSampling2D(
                    2, interpolation="nearest", name=f"up{stage}", dtype=policy
                )
            )
            for i in range(n_convs - 1):
                self.up_layers.append(self._conv(filters, f"up{stage}_conv{i}"))
        bias = "zeros" if output_bias is None else keras.initializers.Constant(self.output_bias)
        self.to_rgb = keras.layers.Conv2D(
            3, 3, padding="same", bias_initializer=bias, name="to_rgb", dtype=policy
        )
        track_layer_list(self, "pre_block", self.pre_blocks)
        track_layer_list(self, "post_block", self.post_blocks)
        track_layer_list(self, "up_layer", self.up_layers)

    def _conv(self, filters, name):
        return keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=name, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        shape = tuple(input_shape[0])
        for block in self.pre_blocks + self.post_blocks:
            block.build(shape)
        self.fusion.build(tuple(input_shape))
        for layer in self.up_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.to_rgb.build(shape)
        self.built = True

    def content_code(self, f_pur):
        """Residual blocks on the purified content map: `[B, h, w, 512]` -> same."""
        x = f_pur
        for block in self.pre_blocks:
            x = block(x)
        return x

    def fuse(self, code, v_c, v_r):
        """`R_fusion` of Eq. 1-2 (or an ablation mode), `[B, h, w, 512]`."""
        return self.fusion((code, v_c, v_r))

    def render(self, r_fusion):
        """Post-fusion residual blocks and upsampling: `[B, h, w, 512]` -> `[B, 8h, 8w, 3]`."""
        x = r_fusion
        for block in self.post_blocks:
            x = block(x)
        for layer in self.up_layers:
            x = layer(x)
        return self.to_rgb(x)

    def call(self, inputs):
        f_pur, v_c, v_r = inputs
        return self.render(self.fuse(self.content_code(f_pur), v_c, v_r))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "num_pre_blocks": self.num_pre_blocks,
                "num_post_blocks": self.num_post_blocks,
                "fusion_mode": self.fusion_mode,
                "upsample_filters": self.upsample_filters,
                "fusion_rank": self.fusion_rank,
                "zero_init_residual": self.zero_init_residual,
                "output_bias": self.output_bias,
            }
        )
        return config
