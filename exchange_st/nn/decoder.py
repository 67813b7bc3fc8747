"""Content-style fusion and the two decoders (Sec. 3.3 and 3.5)."""

import keras

from exchange_st.nn import ops
from exchange_st.nn.ops import track_layer_list

FUSION_MODES = ("ours", "adain", "concat")


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

    With `offset=b` (beyond the paper; 0 is Eq. 2) the expansion reads
    `(R_pool + b) . v_r`: every pixel also carries `b v_r`, the style vector
    itself, as AdaIN's target mean does, where Eq. 2 only scales it by a
    signed, zero-mean `R_pool` (docs/experiments/style_conditioning.md).

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
      offset: added to `R_pool` before the expansion (`"ours"` mode; 0 in
        the paper).

    Call arguments:
      inputs: triple `(f_pur [B, h, w, C], v_c [B, k * C], v_r [B, k * C])`.

    Returns:
      `R_fusion`, `[B, h, w, C]`.
    """

    def __init__(self, mode="ours", channels=512, epsilon=1e-5, rank=1, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in FUSION_MODES:
            raise ValueError(f"fusion mode must be one of {FUSION_MODES}, got {mode!r}")
        if rank < 1 or (rank > 1 and mode != "ours"):
            raise ValueError(f"fusion rank must be 1, or >= 1 with mode 'ours'; got {rank}")
        self.mode = mode
        self.channels = channels
        self.epsilon = epsilon
        self.rank = rank
        if offset and mode != "ours":
            raise ValueError(f"fusion offset needs mode 'ours'; got mode {mode!r}")
        self.offset = float(offset)
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
            if self.offset:
                r_pool = r_pool + self.offset
            return keras.ops.einsum("bhwk,bkc->bhwc", r_pool, v_r)  # Eq. 2, k rows
        v_c = keras.ops.cast(v_c, f_pur.dtype)[:, None, None, :]
        v_r = keras.ops.cast(v_r, f_pur.dtype)[:, None, None, :]
        if self.mode == "ours":
            r_pool = keras.ops.sum(f_pur * v_c, axis=-1, keepdims=True)  # Eq. 1
            if self.offset:
                r_pool = r_pool + self.offset
            return r_pool * v_r  # Eq. 2
        if self.mode == "adain":
            return ops.adain(f_pur, v_c, v_r, self.epsilon)
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
                "offset": self.offset,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class ResidualBlock(keras.layers.Layer):
    """conv-ReLU-conv with an identity skip, at constant width (Sec. 3.5).

    With `zero_init=True` the second conv starts at zero, so a fresh block is
    the identity (as in Goyal et al.'s zero-gamma and Fixup initialisations
    of normalisation-free residual networks): a fresh stack of five blocks
    otherwise scales its input unpredictably (docs/experiments/trainability.md).

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
            filters,
            kernel_size,
            padding="same",
            activation="relu",
            name="conv1",
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


# Conv layers per upsampling stage: the mirror of VGG-19 blocks 4 (its first
# conv only), 3, 2 and 1, as in AdaIN's decoder [11].
CONVS_PER_STAGE = (4, 2, 2)


@keras.saving.register_keras_serializable(package="exchange_st")
class Upsampler(keras.layers.Layer):
    """The upsampling half of a decoder: relu4_1-sized maps back to an RGB image.

    "Nearest-neighbor upscaling plus convolution" (Sec. 3.5), laid out as
    AdaIN's decoder [11] mirrors VGG-19 down to relu1_1: per stage a 3 x 3
    conv to the stage width, a 2x nearest-neighbour upsampling and the
    remaining 3 x 3 convs of that VGG block (ReLU), then a linear 3 x 3 conv
    to RGB. Zero "same" padding (the original AdaIN reflects). Both
    `Decoder` and the AdaIN baseline render with it.

    Args:
      upsample_filters: widths of the three stages.
      output_bias: initial bias of the RGB conv, i.e. the colour a fresh
        decoder paints everywhere; `None` keeps zeros (black).

    Call arguments:
      x: `[B, h, w, C]`.

    Returns:
      `[B, 8h, 8w, 3]` image, linear (not clipped).
    """

    def __init__(self, upsample_filters=(256, 128, 64), output_bias=None, **kwargs):
        super().__init__(**kwargs)
        if len(upsample_filters) != len(CONVS_PER_STAGE):
            raise ValueError(
                f"upsample_filters needs {len(CONVS_PER_STAGE)} widths, got {upsample_filters}"
            )
        self.upsample_filters = tuple(upsample_filters)
        self.output_bias = None if output_bias is None else tuple(float(v) for v in output_bias)
        policy = self.dtype_policy
        # Each sub-layer is an attribute named after it, not only a list
        # entry: TensorFlow checkpoints walk attributes, not Keras' lists.
        self._up_layer_names = []
        for stage, (filters, n_convs) in enumerate(zip(self.upsample_filters, CONVS_PER_STAGE)):
            self._add(self._conv(filters, f"up{stage}_in"))
            self._add(
                keras.layers.UpSampling2D(
                    2, interpolation="nearest", name=f"up{stage}", dtype=policy
                )
            )
            for i in range(n_convs - 1):
                self._add(self._conv(filters, f"up{stage}_conv{i}"))
        bias = "zeros" if output_bias is None else keras.initializers.Constant(self.output_bias)
        self.to_rgb = keras.layers.Conv2D(
            3, 3, padding="same", bias_initializer=bias, name="to_rgb", dtype=policy
        )

    def _add(self, layer):
        setattr(self, layer.name, layer)
        self._up_layer_names.append(layer.name)

    def _conv(self, filters, name):
        return keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=name, dtype=self.dtype_policy
        )

    @property
    def up_layers(self):
        """The convolutions and upsamplings before `to_rgb`, in call order."""
        return [getattr(self, name) for name in self._up_layer_names]

    def render_layers(self):
        """Every layer from the input map to the image, in call order.

        A method, not a property: Keras' weights file walks public
        attributes, and a property listing the layers would move them to
        a new path in the file.
        """
        return self.up_layers + [self.to_rgb]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.up_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.to_rgb.build(shape)
        self.built = True

    def call(self, x, training=None):
        for layer in self.render_layers():
            x = layer(x)
        return x

    def get_config(self):
        config = super().get_config()
        config.update({"upsample_filters": self.upsample_filters, "output_bias": self.output_bias})
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
      fusion_offset: see `CSFusion` (0 in the paper).
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
        fusion_offset=0.0,
        zero_init_residual=False,
        output_bias=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = channels
        self.fusion_rank = fusion_rank
        self.fusion_offset = float(fusion_offset)
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
            fusion_mode,
            channels,
            rank=fusion_rank,
            offset=fusion_offset,
            name="fusion",
            dtype=policy,
        )
        self.post_blocks = [
            ResidualBlock(channels, zero_init=zero_init_residual, name=f"post_res{i}", dtype=policy)
            for i in range(num_post_blocks)
        ]
        self.upsampler = Upsampler(
            self.upsample_filters, output_bias, name="upsampler", dtype=policy
        )
        # The upsampler's layers are also attributes under the names they had
        # before it was shared with AdaIN, so weights files keep their layout:
        # Keras saves a layer under the first attribute path it walks, in
        # sorted order, and `up_layer_*` and `to_rgb` sort before `upsampler`
        # (tests/test_layers.py checks the paths).
        self.up_layers = self.upsampler.up_layers
        self.to_rgb = self.upsampler.to_rgb
        track_layer_list(self, "pre_block", self.pre_blocks)
        track_layer_list(self, "post_block", self.post_blocks)
        track_layer_list(self, "up_layer", self.up_layers)

    def build(self, input_shape):
        shape = tuple(input_shape[0])
        for block in self.pre_blocks + self.post_blocks:
            block.build(shape)
        self.fusion.build(tuple(input_shape))
        self.upsampler.build(shape)
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

    def post_fusion(self, r_fusion):
        """Post-fusion residual blocks: `[B, h, w, 512]` -> same."""
        x = r_fusion
        for block in self.post_blocks:
            x = block(x)
        return x

    def render(self, r_fusion):
        """Post-fusion residual blocks and upsampling: `[B, h, w, 512]` -> `[B, 8h, 8w, 3]`."""
        return self.upsampler(self.post_fusion(r_fusion))

    def render_layers(self):
        """Every layer of `render` in call order: post-fusion blocks, upsampling, RGB conv."""
        return self.post_blocks + self.upsampler.render_layers()

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
                "fusion_offset": self.fusion_offset,
                "zero_init_residual": self.zero_init_residual,
                "output_bias": self.output_bias,
            }
        )
        return config
