"""The style heads of Sec. 3.1 (`v_w`, `v_c`, `v_r` from `f'_com` and a code) and content purification."""

import keras

from exchange_st.nn import covariance


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
    the content code's RMS (docs/experiments/trainability.md).

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
            x = covariance.rms_normalize(x)
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


def purify(f_vgg, v_w, normalize=False, epsilon=1e-5):
    """Channel-wise content purification `f_pur = f_vgg * v_w` (Sec. 3.1).

    With `normalize=True` (beyond the paper) each channel of `f_vgg` is first
    normalised over the pixels, as AdaIN and WCT remove a content's style:
    `f_pur = v_w * (f_vgg - mu) / sigma`. The image's channel statistics
    (its colours and textures' averages) then no longer reach `R_pool`, so
    Eq. 5 cannot rebuild `I_c->c`'s palette from them and has to read it
    from the image's own `v_r` (docs/experiments/style_conditioning.md).

    Args:
      f_vgg: `[B, h, w, C]`.
      v_w: `[B, C]`.
      normalize: instance-normalise `f_vgg` first.
      epsilon: variance floor of the normalisation.

    Returns:
      `[B, h, w, C]`.
    """
    if normalize:
        mu, var = keras.ops.moments(f_vgg, axes=[1, 2], keepdims=True)
        f_vgg = (f_vgg - mu) * keras.ops.rsqrt(var + epsilon)
    return f_vgg * keras.ops.cast(v_w, f_vgg.dtype)[:, None, None, :]
