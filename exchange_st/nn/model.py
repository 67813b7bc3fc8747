"""The full network of Fig. 3: encoder, joint analysis, two decoders, four outputs."""

import dataclasses

import keras

from exchange_st.nn import decoder as decoder_lib
from exchange_st.nn import covariance, exchange, style_heads, ops
from exchange_st.nn import losses, model_options, objective
from exchange_st.nn.model_options import CODE_RMS, CONTENT_CODE_RMS, IMAGE_MEAN_RGB, VGG_CHANNELS
from exchange_st.nn.stylization import StylizationMixin
from exchange_st.nn.vgg import FEATURE_NAMES, VGGEncoder


@keras.saving.register_keras_serializable(package="exchange_st")
class ExchangeStyleTransfer(objective.ObjectiveMixin, StylizationMixin, keras.Model):
    """Pair-wise exchangeable feature extraction for arbitrary style transfer.

    Every hyperparameter the paper fixes has its paper value as the default;
    the others are documented choices (docs/design.md).

    Args:
      vgg_weights: `"imagenet"`, a Keras notop h5 path, or `None` (random).
      vgg_feature_scales: see `VGGEncoder`; `None` resolves from `vgg_weights`.
      code_dim: size of `f_c`, `f_s`, `f_com`, `f_uni` (256, Sec. 3.1).
      num_exchange_blocks: chained Feature Exchange blocks (3, Sec. 3.5);
        0 disables them (ablation, Fig. 13).
      share_exchange_block: iterate one shared block `num_exchange_blocks`
        times instead of chaining distinct ones (ablation, Fig. 13).
      compressor_filters: conv widths of the covariance compressor.
      compressor_initializer: kernel initializer of the compressor's convs
        (Keras' `"glorot_uniform"`; `"he_normal"` keeps their activations at
        the input's scale, docs/experiments/trainability.md). The paper does
        not say.
      fusion_mode: `"ours"` (Eq. 1-2), `"adain"` or `"concat"` (Fig. 8).
      gate_bias_init: initial gate bias of the message passing units.
      num_pre_fusion_blocks: residual blocks before fusion (3, Sec. 3.5).
      num_post_fusion_blocks: residual blocks after fusion (2, Sec. 3.5).
      upsample_filters: widths of the decoders' three upsampling stages.
      fusion_rank: projections k of Eq. 1-2 (1 in the paper; k > 1 is the
        option the paper's conclusion suggests, `fusion_mode="ours"` only).
      fusion_offset: `b` in `R_fusion = (R_pool + b) v_r` (0: Eq. 2 as
        written; beyond the paper, `fusion_mode="ours"` only): every pixel
        then also carries the style vector itself (`decoder.CSFusion`).
      purification: `"attention"` (Sec. 3.1: `f_pur = v_w * f_vgg`) or
        `"normalized"` (beyond the paper: `v_w` times the instance-normalised
        `f_vgg`, so `R_pool` carries no channel statistics;
        `style_heads.purify`).
      initialization: `"scaled"` (default) starts the decoders' residual
        blocks as the identity, their output at the mean colour and `v_c`,
        `v_r` as scale-keeping projections (`style_heads.StyleHeads`); `"keras"`
        is Keras' defaults everywhere, with which a fresh model renders a
        flat near-black image and trains slowly
        (docs/experiments/trainability.md); `"scaled_kernels"` is `"scaled"` with the scale of
        `v_c`, `v_r` in the heads' kernels instead of their biases, so they
        start as functions of the codes; `"scaled_zero_heads"` is `"scaled"`
        with the heads' kernels at zero, so `v_w`, `v_c`, `v_r` start
        independent of the codes; `"equalized"` is `"scaled"` with unit-gain
        heads whose scales are fixed multipliers (`style_heads.StyleHeads`).
        `"scaled_kernels"` and `"equalized"` set the scales of Eq. 1-2's
        `v_c`, `v_r`: with the other fusion modes the heads start as in
        `"scaled"`. The paper does not say.
      content_weight, style_weight, rec_weight, com_weight, orthogonality,
        perceptual_norm, exchange_targets, reconstruction_space: the
        training objective (`losses.LossConfig`: the lambdas of Eq. 7, 1 / 2
        / 5 / 7, the form of Eq. 6's orthogonality terms, the reduction of
        Eq. 3-4's norm, whether Eq. 6's targets take its gradient, the
        colour basis of Eq. 5's L1), used by `compute_loss` when the model
        trains with `fit`.

    Call arguments:
      content: `[B, H, W, 3]` float32 in [0, 1] (`I_c`), or a batch
        `{"content": ..., "style": ...}` / `(content, style)` as `fit` passes.
      style: `[B, H2, W2, 3]` float32 in [0, 1] (`I_s`); omitted when
        `content` holds the pair.
      content_mask, style_mask: optional `[B, H, W]`/`[B, H2, W2]` weights
        restricting the pairwise analysis to the masked pixels.

    Returns:
      Dict with the four images `s2c` (`I_s->c`), `c2c` (`I_c->c`), each
      `[B, H, W, 3]`, and `c2s` (`I_c->s`), `s2s` (`I_s->s`), each
      `[B, H2, W2, 3]` (linear decoder output, not clipped); the codes
      `f_c`, `f_s`, `f_com`, `f_uni_c`, `f_uni_s` (last block's output) and
      `f_c_rec`, `f_s_rec` (`f*` of Eq. 6), each `[B, 256]`; and the encoder
      features `feats_c`, `feats_s` of the (padded) inputs, lists of four
      maps relu1_1..relu4_1, which the losses reuse.
    """

    # A release (`exchange_st.saving.release`) stores what `I_s->c` reads.
    RELEASE_NAME = "efanet"
    RELEASE_LEFT_OUT = ("decoder_s", "fc_rec")

    # Every term of `losses.compute_losses` but the total (Keras' `loss`).
    LOSS_TERMS = (
        "content",
        "style",
        *(f"style/{name}" for name in FEATURE_NAMES),
        "rec",
        "com",
        "com/orthogonality",
        "com/reconstruction",
    )

    def __init__(
        self,
        vgg_weights="imagenet",
        vgg_feature_scales=None,
        code_dim=256,
        num_exchange_blocks=3,
        share_exchange_block=False,
        compressor_filters=(32, 64, 128, 128, 64),
        compressor_initializer="glorot_uniform",
        fusion_mode="ours",
        gate_bias_init=-5.0,
        num_pre_fusion_blocks=3,
        num_post_fusion_blocks=2,
        upsample_filters=(256, 128, 64),
        fusion_rank=1,
        fusion_offset=0.0,
        purification="attention",
        initialization="scaled",
        code_normalization="none",
        style_statistics=False,
        content_weight=1.0,
        style_weight=2.0,
        rec_weight=5.0,
        com_weight=7.0,
        orthogonality="abs",
        perceptual_norm="squared",
        exchange_targets="trainable",
        reconstruction_space="rgb",
        **kwargs,
    ):
        super().__init__(**kwargs)
        model_options.validate(
            initialization=initialization,
            purification=purification,
            code_normalization=code_normalization,
            compressor_initializer=compressor_initializer,
            fusion_mode=fusion_mode,
            num_exchange_blocks=num_exchange_blocks,
        )
        # Validates the objective before any layer is built.
        self.loss_config = losses.LossConfig(
            content_weight=content_weight,
            style_weight=style_weight,
            rec_weight=rec_weight,
            com_weight=com_weight,
            orthogonality=orthogonality,
            perceptual_norm=perceptual_norm,
            exchange_targets=exchange_targets,
            reconstruction_space=reconstruction_space,
        )
        self.vgg_weights = vgg_weights
        self.code_dim = code_dim
        self.num_exchange_blocks = num_exchange_blocks
        self.share_exchange_block = share_exchange_block
        self.compressor_filters = tuple(compressor_filters)
        self.compressor_initializer = compressor_initializer
        self.fusion_mode = fusion_mode
        self.gate_bias_init = gate_bias_init
        self.num_pre_fusion_blocks = num_pre_fusion_blocks
        self.num_post_fusion_blocks = num_post_fusion_blocks
        self.upsample_filters = tuple(upsample_filters)
        self.fusion_rank = fusion_rank
        self.fusion_offset = float(fusion_offset)
        self.purification = purification
        self.initialization = initialization
        self.code_normalization = code_normalization
        self.style_statistics = bool(style_statistics)
        scaled = initialization != "keras"
        paper_fusion = scaled and fusion_mode == "ours"

        policy = self.dtype_policy
        self.encoder = VGGEncoder(vgg_weights, vgg_feature_scales, name="vgg_encoder", dtype=policy)
        # One compressor and one set of style heads serve both images: either
        # image plays either role (I_s is the content of I_c->s).
        self.compressor = covariance.CovarianceCompressor(
            code_dim,
            self.compressor_filters,
            kernel_initializer=compressor_initializer,
            output_normalization=None if code_normalization == "none" else code_normalization,
            name="compressor",
            dtype=policy,
        )
        self.fc_uni_c = keras.layers.Dense(code_dim, name="fc_uni_c", dtype=policy)
        self.fc_uni_s = keras.layers.Dense(code_dim, name="fc_uni_s", dtype=policy)
        self.fc_com = keras.layers.Dense(code_dim, name="fc_com", dtype=policy)
        n_distinct = min(num_exchange_blocks, 1) if share_exchange_block else num_exchange_blocks
        self.exchange_blocks = [
            exchange.FeatureExchangeBlock(
                code_dim, gate_bias_init, name=f"exchange_block{i}", dtype=policy
            )
            for i in range(n_distinct)
        ]
        ops.track_layer_list(self, "exchange_block", self.exchange_blocks)
        self.style_heads = style_heads.StyleHeads(
            VGG_CHANNELS,
            fusion_rank,
            code_rms=CONTENT_CODE_RMS if paper_fusion else None,
            input_rms=(
                CODE_RMS[compressor_initializer]
                if paper_fusion and initialization == "scaled_kernels"
                else None
            ),
            zero_kernels=initialization == "scaled_zero_heads",
            equalized=paper_fusion and initialization == "equalized",
            name="style_heads",
            dtype=policy,
        )
        # f* of Eq. 6: used by L_com during training only.
        self.fc_rec = keras.layers.Dense(code_dim, name="fc_rec", dtype=policy)
        decoder = dict(
            channels=VGG_CHANNELS,
            num_pre_blocks=num_pre_fusion_blocks,
            num_post_blocks=num_post_fusion_blocks,
            fusion_mode=fusion_mode,
            upsample_filters=self.upsample_filters,
            fusion_rank=fusion_rank,
            fusion_offset=fusion_offset,
            zero_init_residual=scaled,
            output_bias=IMAGE_MEAN_RGB if scaled else None,
            dtype=policy,
        )
        # Sec. 3.1: I_c->c and I_s->c share one decoder, I_c->s and I_s->s the
        # other, i.e. decoders are keyed by the image the content comes from.
        self.decoder_c = decoder_lib.Decoder(name="decoder_c", **decoder)
        self.decoder_s = decoder_lib.Decoder(name="decoder_s", **decoder)
        self._init_objective()
        # Why this model cannot train (a release lacks decoder_s and fc_rec),
        # or None; set by `release.load`, not part of the config.
        self.inference_only = None
        # A training phase, not part of the config: Eq. 7 with Eq. 5 alone
        # (`TrainConfig.rec_only_steps`). Read when the train step is traced.
        self.reconstruction_only = False

    def purify(self, f_vgg, v_w):
        """`f_pur` of Sec. 3.1 with this model's `purification`: `[B, h, w, 512]`."""
        return style_heads.purify(f_vgg, v_w, normalize=self.purification == "normalized")

    def compile(self, *args, **kwargs):
        if self.inference_only:
            raise RuntimeError(self.inference_only)
        super().compile(*args, **kwargs)

    def loss_terms(self, outputs, content, style):
        """Eq. 3-7 of the batch: `losses.compute_losses` with this model's weights.

        While `reconstruction_only` is set, the total is Eq. 5's term alone
        (every term is still computed and logged).
        """
        config = self.loss_config
        if self.reconstruction_only:
            config = dataclasses.replace(
                config, content_weight=0.0, style_weight=0.0, com_weight=0.0
            )
        return losses.compute_losses(outputs, content, style, self.encoder, config)

    def release_layers(self):
        """`[(name, layer)]` of what stylization reads: the s2c path, without the VGG."""
        names = ("compressor", "fc_uni_c", "fc_uni_s", "fc_com", "style_heads", "decoder_c")
        return [(n, getattr(self, n)) for n in names] + [(b.name, b) for b in self.exchange_blocks]

    def exchange_block_sequence(self):
        """The Feature Exchange blocks in the order they run (a shared block repeated)."""
        if self.share_exchange_block:
            return self.exchange_blocks * self.num_exchange_blocks
        return self.exchange_blocks

    def analyze(self, f_vgg_c, f_vgg_s, mask_c=None, mask_s=None):
        """Joint analysis of a pair (Sec. 3.1-3.2): codes and style vectors.

        Args:
          f_vgg_c, f_vgg_s: relu4_1 maps `[B, h, w, 512]`, `[B', h', w', 512]`;
            `B'` may be 1 to share one style across a content batch.
          mask_c, mask_s: optional feature-resolution pixel weights.

        Returns:
          Dict with `f_c`, `f_s` (compressed covariances), refined `f_com`,
          `f_uni_c`, `f_uni_s`, and for each image `x` in (`c`, `s`) its
          `v_w_x`, `v_c_x`, `v_r_x`, each `[B, 512]`.
        """
        f_c = self.compressor(f_vgg_c, mask_c)
        f_s = self.compressor(f_vgg_s, mask_s)
        statistics = None
        if self.style_statistics:
            stats_c = self._statistics(f_vgg_c, mask_c)
            # One style may serve a batch of contents, as f_s does in `_exchange`.
            stats_s = keras.ops.broadcast_to(
                self._statistics(f_vgg_s, mask_s), keras.ops.shape(stats_c)
            )
            statistics = (stats_c, stats_s)
        return self.exchange_codes(f_c, f_s, statistics)

    def _statistics(self, f_vgg, mask):
        """`[B, 1024]`: relu4_1's channel means and stds as a unit vector (`style_statistics`)."""
        mean, std = covariance.masked_moments(f_vgg, mask)
        stats = covariance.l2_normalize(keras.ops.concatenate([mean, std], axis=-1))
        return keras.ops.cast(stats, self.compute_dtype)

    def exchange_codes(self, f_c, f_s, statistics=None):
        """`analyze` after the compressor: Feature Exchange blocks and style heads.

        Args:
          f_c, f_s: compressed covariances `[B, 256]`, `[B or 1, 256]`.
          statistics: with `style_statistics`, the pair `(c, s)` of
            `[B, 1024]` channel statistics the heads also read.

        Returns:
          The dict of `analyze`.
        """
        codes = self._exchange(f_c, f_s)
        for i, x in enumerate(("c", "s")):
            inputs = (codes["f_com"], codes[f"f_{x}"])
            if statistics is not None:
                inputs += (statistics[i],)
            for name, v in self.style_heads(inputs).items():
                codes[f"{name}_{x}"] = v
        return codes

    def _exchange(self, f_c, f_s):
        """The FC layers and Feature Exchange blocks: `f_c`, `f_s`, `f_com`, `f_uni_c`, `f_uni_s`."""
        f_s = keras.ops.broadcast_to(f_s, keras.ops.shape(f_c))
        f_uni_c = self.fc_uni_c(f_c)
        f_uni_s = self.fc_uni_s(f_s)
        f_com = self.fc_com(keras.ops.concatenate([f_c, f_s], axis=-1))
        for block in self.exchange_block_sequence():
            f_com, f_uni_c, f_uni_s = block((f_com, f_uni_c, f_uni_s))
        return {"f_c": f_c, "f_s": f_s, "f_com": f_com, "f_uni_c": f_uni_c, "f_uni_s": f_uni_s}

    def call(self, content, style=None, training=None, content_mask=None, style_mask=None):
        content, style = objective.split_pair(content, style)
        content, feats_c, mask_c = ops.encode(self.encoder, content, "content", content_mask)
        style, feats_s, mask_s = ops.encode(self.encoder, style, "style", style_mask)
        static_b = (content.shape[0], style.shape[0])
        if None not in static_b and static_b[0] != static_b[1]:
            raise ValueError(
                f"content and style batches must pair up, got {static_b[0]} and "
                f"{static_b[1]} images; use stylize() to apply one style to many images."
            )
        f_vgg_c, f_vgg_s = feats_c[-1], feats_s[-1]
        codes = self.analyze(f_vgg_c, f_vgg_s, mask_c, mask_s)
        f_pur_c = self.purify(f_vgg_c, codes["v_w_c"])
        f_pur_s = self.purify(f_vgg_s, codes["v_w_s"])
        code_c = self.decoder_c.content_code(f_pur_c)
        code_s = self.decoder_s.content_code(f_pur_s)
        out = {}
        for key, decoder, code, like, style_of in (
            ("s2c", self.decoder_c, code_c, content, "s"),
            ("c2c", self.decoder_c, code_c, content, "c"),
            ("c2s", self.decoder_s, code_s, style, "c"),
            ("s2s", self.decoder_s, code_s, style, "s"),
        ):
            r_fusion = decoder.fuse(code, codes[f"v_c_{style_of}"], codes[f"v_r_{style_of}"])
            out[key] = keras.ops.cast(ops.crop_to(decoder.render(r_fusion), like), "float32")
        out.update(codes)
        out.update(self._reconstruct_codes(codes))
        if self.loss_config.exchange_targets == "detached":
            # Eq. 6 on a copy of the exchange path fed with stop-gradient codes:
            # it trains the FC layers, exchange blocks and f*, not the compressor.
            eq6 = self._exchange(
                keras.ops.stop_gradient(codes["f_c"]), keras.ops.stop_gradient(codes["f_s"])
            )
            out["eq6"] = {**eq6, **self._reconstruct_codes(eq6)}
        out["feats_c"] = feats_c
        out["feats_s"] = feats_s
        return out

    def _reconstruct_codes(self, codes):
        """`f*` of Eq. 6: the reconstruction FC on `f_com + f_uni` of each image."""
        return {
            "f_c_rec": self.fc_rec(codes["f_com"] + codes["f_uni_c"]),
            "f_s_rec": self.fc_rec(codes["f_com"] + codes["f_uni_s"]),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # Weights travel with the saved variables (see VGGEncoder).
                "vgg_weights": None,
                "vgg_feature_scales": self.encoder.feature_scales,
                "code_dim": self.code_dim,
                "num_exchange_blocks": self.num_exchange_blocks,
                "share_exchange_block": self.share_exchange_block,
                "compressor_filters": self.compressor_filters,
                "compressor_initializer": self.compressor_initializer,
                "fusion_mode": self.fusion_mode,
                "gate_bias_init": self.gate_bias_init,
                "num_pre_fusion_blocks": self.num_pre_fusion_blocks,
                "num_post_fusion_blocks": self.num_post_fusion_blocks,
                "upsample_filters": self.upsample_filters,
                "fusion_rank": self.fusion_rank,
                "fusion_offset": self.fusion_offset,
                "purification": self.purification,
                "initialization": self.initialization,
                "code_normalization": self.code_normalization,
                "style_statistics": self.style_statistics,
                **{
                    f.name: getattr(self.loss_config, f.name)
                    for f in dataclasses.fields(self.loss_config)
                },
            }
        )
        return config
