"""Keras layers of the pairwise analysis: covariance codes, Feature Exchange blocks, style heads (Sec. 3.1-3.2, Fig. 4)."""

import keras

from exchange_st import ops


def track_layer_list(owner, prefix, layer_list):
    """Names each layer of a list as an attribute of `owner`; returns the list.

    Keras 3 tracks layer lists for `.keras` saving but leaves them out of the
    object graph TensorFlow's `train.Checkpoint` walks, so their variables
    would be silently missing from training checkpoints. Attributes are walked.
    """
    for i, layer in enumerate(layer_list):
        setattr(owner, f"{prefix}_{i}", layer)
    return layer_list


CODE_NORMALIZATIONS = (None, "l2")


def rms_normalize(x, epsilon=1e-12):
    """`x / RMS(x)` over the last axis, computed in float32: `[..., D]` -> same."""
    x32 = keras.ops.cast(x, "float32")
    rms = keras.ops.sqrt(keras.ops.mean(keras.ops.square(x32), axis=-1, keepdims=True) + epsilon)
    return keras.ops.cast(x32 / rms, x.dtype)


def l2_normalize(x, epsilon=1e-12):
    """`x / ||x||_2` over the last axis, computed in float32: `[..., D]` -> same."""
    x32 = keras.ops.cast(x, "float32")
    norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(x32), axis=-1, keepdims=True) + epsilon)
    return keras.ops.cast(x32 / norm, x.dtype)


def masked_moments(features, mask=None, epsilon=1e-5):
    """Channel mean and standard deviation over (weighted) pixels: AdaIN's style statistics [11].

    Args:
      features: `[B, H, W, C]`.
      mask: optional `[B, H, W, 1]` non-negative pixel weights.
      epsilon: variance floor, and guard of an empty mask's division.

    Returns:
      `(mean, std)`, each `[B, C]` float32.
    """
    f = keras.ops.cast(features, "float32")
    if mask is None:
        mean, var = keras.ops.moments(f, axes=[1, 2])
        return mean, keras.ops.sqrt(var + epsilon)
    w = keras.ops.cast(mask, "float32")
    count = keras.ops.maximum(keras.ops.sum(w, axis=(1, 2)), epsilon)
    mean = keras.ops.sum(w * f, axis=(1, 2)) / count
    var = keras.ops.sum(w * keras.ops.square(f - mean[:, None, None, :]), axis=(1, 2)) / count
    return mean, keras.ops.sqrt(var + epsilon)


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
      kernel_initializer: initializer of the conv kernels (Keras'
        `"glorot_uniform"` by default; `"he_normal"` keeps the ReLU stack's
        activation scale from layer to layer).
      output_normalization: `None` (the paper: the FC's output as it is) or
        `"l2"`: each code divided by its Euclidean norm, so that its direction
        alone carries the image, whatever scale the layers before it learn.
        The paper fixes no scale; with Keras' initialisers the codes start at
        RMS ~0.02 and training can shrink them further, which silences the
        style path (BUILD_NOTES.md, "Style conditioning"). A unit norm (RMS
        1/16 for 256-D codes) keeps Eq. 6, whose dot products and L1 sums
        grow with the codes, near the paper's fresh-code values (unit-RMS
        codes would make it ~40x larger and drown the other terms).

    Call arguments:
      features: `[B, h, w, C]` VGG relu4_1 map (`f_vgg_c` or `f_vgg_s`).
      pixel_weights: optional `[B, h, w, 1]` mask at the feature resolution.

    Returns:
      `[B, code_dim]` code.
    """

    def __init__(
        self,
        code_dim=256,
        filters=(32, 64, 128, 128, 64),
        kernel_size=3,
        kernel_initializer="glorot_uniform",
        output_normalization=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output_normalization not in CODE_NORMALIZATIONS:
            raise ValueError(
                f"output_normalization must be one of {CODE_NORMALIZATIONS}, "
                f"got {output_normalization!r}"
            )
        self.code_dim = code_dim
        self.output_normalization = output_normalization
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        # Kept as a name or config, never built here: each conv builds its own
        # instance (its own draw), and an instance made here would consume a
        # seed and shift every later layer's initial weights.
        self.kernel_initializer = (
            kernel_initializer
            if isinstance(kernel_initializer, (str, dict))
            else keras.initializers.serialize(kernel_initializer)
        )
        self.convs = [
            keras.layers.Conv2D(
                n,
                kernel_size,
                strides=2,
                padding="same",
                activation="relu",
                kernel_initializer=self.kernel_initializer,
                name=f"conv{i}",
                dtype=self.dtype_policy,
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
        return self.compress(masked_covariance(features, pixel_weights))

    def compress(self, cov):
        """The conv layers and FC on a covariance `[B, C, C]` -> `[B, code_dim]`."""
        x = keras.ops.cast(cov[..., None], self.compute_dtype)
        for conv in self.convs:
            x = conv(x)
        code = self.fc(self.flatten(x))
        if self.output_normalization == "l2":
            code = l2_normalize(code)
        return code

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "code_dim": self.code_dim,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "kernel_initializer": self.kernel_initializer,
                "output_normalization": self.output_normalization,
            }
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

    With `input_rms` also set, the same scales go into the kernels instead,
    with zero biases: `v_c` and `v_r` then start as functions of the codes
    (of RMS `input_rms` at initialisation) rather than as fixed random
    vectors, so the fresh model's `R_fusion` already depends on the style.

    With `equalized=True` (and `code_rms`), the heads read their input
    RMS-normalised, `x = concat(...) / RMS`, and `v_c`, `v_r` are functions
    of it alone, with their scales as fixed multipliers outside the weights:
    `v = scale * (W x + b)`, `W ~ N(0, 1 / fan_in)`, `b = 0` (the equalised
    learning rate of Karras et al., 2018). Then no change of the codes'
    scale can turn the style off, and Adam, which moves every weight by
    about the learning rate whatever its size, moves both heads at the same
    relative pace (a kernel carrying `v_c`'s scale would have entries
    ~0.0015 and be rewritten at ~7% per step, `v_r`'s at 0.2%).

    Args:
      channels: size of the three vectors (512, the VGG channel count).
      fusion_rank: projections in `v_c`/`v_r` (1 in the paper).
      code_rms: expected RMS of the content code `R_pool` is computed from,
        or `None` for zero biases (the AdaIN and concat fusion modes, whose
        `v_c`/`v_r` are not projections).
      input_rms: RMS of the fresh codes `(f'_com, f_x)`; if set (with
        `code_rms`), the kernels rather than the biases carry the scales.
      zero_kernels: start the three kernels at zero, so the fresh heads are
        their biases alone and do not depend on the codes until training
        gives them a reason to (the zero-initialised conditioning of
        adaLN-Zero, Peebles & Xie 2023). Excludes `input_rms`.
      equalized: the scales of `v_c`, `v_r` as fixed multipliers of
        unit-gain heads (above). Needs `code_rms`; excludes `input_rms` and
        `zero_kernels`.

    Call arguments:
      inputs: `(f_com, f_x)`, each `[B, 256]`, optionally followed by more
        `[B, D]` vectors of image `x` that the heads also read (the style
        statistics of `ExchangeStyleTransfer(style_statistics=True)`).

    Returns:
      Dict with `v_w` `[B, channels]`, `v_c` (the 512 x k columns) and `v_r`
      (the k x 512 rows), each stored flat as `[B, k * channels]`.
    """

    def __init__(
        self,
        channels=512,
        fusion_rank=1,
        code_rms=None,
        input_rms=None,
        zero_kernels=False,
        equalized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if fusion_rank < 1:
            raise ValueError(f"fusion_rank must be >= 1, got {fusion_rank}")
        if input_rms is not None and code_rms is None:
            raise ValueError("input_rms needs code_rms: it scales the kernels to code_rms")
        if input_rms is not None and zero_kernels:
            raise ValueError("input_rms puts the scales in the kernels; zero_kernels cannot")
        if equalized and (code_rms is None or input_rms is not None or zero_kernels):
            raise ValueError("equalized needs code_rms, and excludes input_rms and zero_kernels")
        self.channels = channels
        self.fusion_rank = fusion_rank
        self.code_rms = code_rms
        self.input_rms = input_rms
        self.zero_kernels = zero_kernels
        self.equalized = equalized
        c_bias, r_bias = "zeros", "zeros"
        w_kernel = c_kernel = r_kernel = "zeros" if zero_kernels else "glorot_uniform"
        # Fixed output multipliers of v_c, v_r (1 unless equalized).
        self.output_scales = (1.0, 1.0)
        if code_rms is not None:
            c_std = 1.0 / (channels**0.5 * code_rms)
            r_std = code_rms / fusion_rank**0.5
            if equalized:
                self.output_scales = (c_std, r_std)
                # Two instances: one instance would draw the same kernel twice.
                c_kernel, r_kernel = (
                    keras.initializers.VarianceScaling(
                        1.0, mode="fan_in", distribution="untruncated_normal"
                    )
                    for _ in range(2)
                )
            elif input_rms is None:
                c_bias = keras.initializers.RandomNormal(stddev=c_std)
                r_bias = keras.initializers.RandomNormal(stddev=r_std)
            else:
                # x @ W has std `std` for inputs of RMS input_rms when W has
                # std std / (input_rms sqrt(fan_in)): fan-in variance scaling.
                c_kernel, r_kernel = (
                    keras.initializers.VarianceScaling(
                        (std / input_rms) ** 2, mode="fan_in", distribution="untruncated_normal"
                    )
                    for std in (c_std, r_std)
                )
        self.fc_w = keras.layers.Dense(
            channels,
            activation="sigmoid",
            kernel_initializer=w_kernel,
            name="fc_v_w",
            dtype=self.dtype_policy,
        )
        self.fc_c = keras.layers.Dense(
            channels * fusion_rank,
            kernel_initializer=c_kernel,
            bias_initializer=c_bias,
            name="fc_v_c",
            dtype=self.dtype_policy,
        )
        self.fc_r = keras.layers.Dense(
            channels * fusion_rank,
            kernel_initializer=r_kernel,
            bias_initializer=r_bias,
            name="fc_v_r",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        shape = tuple(input_shape[0][:-1]) + (sum(s[-1] for s in input_shape),)
        for layer in (self.fc_w, self.fc_c, self.fc_r):
            layer.build(shape)
        self.built = True

    def call(self, inputs):
        x = keras.ops.concatenate(inputs, axis=-1)
        if self.equalized:
            x = rms_normalize(x)
        v_c, v_r = self.fc_c(x), self.fc_r(x)
        if self.equalized:
            c_scale, r_scale = self.output_scales
            v_c, v_r = v_c * c_scale, v_r * r_scale
        return {"v_w": self.fc_w(x), "v_c": v_c, "v_r": v_r}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "fusion_rank": self.fusion_rank,
                "code_rms": self.code_rms,
                "input_rms": self.input_rms,
                "zero_kernels": self.zero_kernels,
                "equalized": self.equalized,
            }
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
