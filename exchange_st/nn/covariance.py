"""The covariance code of Sec. 3.1: masked channel statistics, the 512 x 512 covariance and its compressor."""

import keras

from exchange_st.nn import ops


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
    (docs/design.md, "Covariance compressor").

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
        style path (docs/experiments/style_conditioning.md). A unit norm (RMS
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
        ops.track_layer_list(self, "conv", self.convs)
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
