"""What a training run is: `TrainConfig`, the registry of trainable models, and
`TrainResult`, what a run reports back.

TensorFlow-free (`train_lib` runs it on any backend).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import keras

from exchange_st.baselines import adain as adain_lib
from exchange_st.data import sources
from exchange_st.nn import losses as losses_lib
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.training import optim

MIXED_PRECISION_MODES = ("none", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; written to `model_dir/config.json`.

    Model attributes default to the paper (Sec. 3.5); the decoder sizes exist
    so tests can build a small network, not as tuning knobs.

    Attributes:
      data: Input pipeline (`sources.DataConfig`); `data.batch_size` is the
        global batch, split evenly across replicas / devices.
      model_dir: Directory of `latest.weights.h5` (+ `.config.json`),
        `config.json`, `train_log.csv`, `images/` and summaries (`train/`).
      loss: Weights of Eq. 7 and the orthogonality form of Eq. 6 (become
        constructor arguments of the model, which owns its objective).
      model: Key of `MODELS`: `"efanet"` (this paper) or a baseline.
      num_exchange_blocks: Feature Exchange blocks, 0-3 (3 in the paper).
      share_exchange_block: Iterate one shared block instead of distinct ones.
      fusion_mode: `"ours"`, `"adain"` or `"concat"` (Fig. 8 ablation).
      compressor_filters: Conv widths of the covariance compressor.
      code_dim: Size of the style codes (256).
      num_pre_fusion_blocks, num_post_fusion_blocks: Decoder residual blocks
        before / after fusion (3 / 2).
      upsample_filters: Widths of the decoder's three upsampling stages.
      initialization: `"scaled"`, `"scaled_kernels"`, `"scaled_zero_heads"` or `"keras"`
        (`ExchangeStyleTransfer`).
      fusion_rank: projections k of Eq. 1-2 (1: the paper; k > 1 is the
        option of its conclusion, `ExchangeStyleTransfer.fusion_rank`).
      model_config: any other constructor arguments of the model, by name
        (e.g. `{"code_normalization": "l2", "compressor_initializer":
        "he_normal"}`), validated by the model itself when it is built; a
        field of this config cannot be set here too.
      adain_style_weight: lambda of the AdaIN baseline's `L_c + lambda L_s`
        (10 in [11]'s training script); only used by `model="adain"`.
      vgg_weights: `"imagenet"`, a Keras notop h5 path, or None (random
        weights: the losses are then meaningless, smoke runs only).
      lr: Adam learning rate after the warm-up (1e-4; default betas).
      warmup_steps: Linear learning-rate warm-up (`optim.make_optimizer`).
      eq7_lr: Beyond the paper (None: `lr` throughout): Adam's rate once Eq. 7
        trains, after `rec_only_steps` (its warm-up ramps to it). At 1e-4 the
        recommended recipe's hue is gone 250 Eq. 7 steps after the switch on
        CPU; at 2e-5 it stays (docs/experiments/cpu_preview.md).
      rec_only_steps: Beyond the paper (0: Eq. 7 from the first step): the
        first steps train Eq. 5 alone, so that the decoder learns to read each
        image's statistics from its own `v_r` before the Gram term, ~100x
        Eq. 5 in the decoder's gradient, teaches it one palette for every
        style (docs/experiments/style_conditioning.md). Adam restarts, with
        its warm-up, when Eq. 7 begins (`optim.restart`). EFANet only.
      steps: Total optimizer steps (350000); a resumed run continues to it.
      seed: Seed of weight init and data; None = random.
      log_every: Steps per `fit` epoch: one console line and one CSV row
        (means of the terms over those steps).
      summary_every: Steps between TensorBoard scalars (with TensorFlow).
      image_every: Steps between image grids (PNG, and TensorBoard with TF).
      checkpoint_every: Steps between saves of `latest.weights.h5` (also
        saved at the end, on SIGINT/SIGTERM and before `max_seconds`).
      keep_checkpoints: 1 keeps only the latest state; K > 1 also keeps
        hard-linked `ckpt-<step>.weights.h5` of the last K saves.
      save_every_seconds: Also save when this long has passed since the
        last save (None: by steps only).
      max_seconds: Stop (and save) before this many seconds since the start
        of `train`; None: no limit.
      mixed_precision: `"none"`, `"mixed_float16"` (with loss scaling) or
        `"mixed_bfloat16"`.
      jit_compile: XLA-compile the train step on TensorFlow; JAX always
        compiles it.
      verbose: `fit`'s own progress output (0 none, 1 bar, 2 a line per
        epoch), besides the console lines of `log_every`.
      eval_content_source, eval_style_source: image directories of the
        evaluation curve (`evaluation_curve`; never the training images);
        None: no curve.
      eval_every: Steps between the curve's reports (and one at the start of
        a run whose step has none yet).
      eval_size: Side of the evaluation images (centre crops).
      eval_pairs: Evaluation pairs (content i with style i), >= 2.
      eval_styles: Styles under which the first evaluation content measures
        the style dependence and the colour follow (0: not measured).
      init_from: A fresh run (no checkpoint in `model_dir`) starts from this
        trained model: a release directory, a training model_dir or a
        `.weights.h5` file (`warm_start`): its weights and step, a fresh
        Adam with its warm-up, its history continued. A run with a
        checkpoint resumes it instead.
      init_training_parts: What a release's missing `decoder_s` starts as:
        `"copy"` of `decoder_c` or `"fresh"` (`warm_start.TRAINING_PARTS`).
    """

    data: sources.DataConfig
    model_dir: str
    loss: losses_lib.LossConfig = dataclasses.field(default_factory=losses_lib.LossConfig)
    model: str = "efanet"
    num_exchange_blocks: int = 3
    share_exchange_block: bool = False
    fusion_mode: str = "ours"
    compressor_filters: tuple[int, ...] = (32, 64, 128, 128, 64)
    code_dim: int = 256
    num_pre_fusion_blocks: int = 3
    num_post_fusion_blocks: int = 2
    upsample_filters: tuple[int, ...] = (256, 128, 64)
    initialization: str = "scaled"
    fusion_rank: int = 1
    model_config: dict = dataclasses.field(default_factory=dict)
    adain_style_weight: float = 10.0
    vgg_weights: str | None = "imagenet"
    lr: float = 1e-4
    warmup_steps: int = optim.DEFAULT_WARMUP_STEPS
    eq7_lr: float | None = None
    rec_only_steps: int = 0
    steps: int = 350_000
    seed: int | None = None
    log_every: int = 100
    summary_every: int = 100
    image_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 5
    save_every_seconds: float | None = None
    max_seconds: float | None = None
    mixed_precision: str = "none"
    jit_compile: bool = False
    verbose: int = 0
    eval_content_source: str | None = None
    eval_style_source: str | None = None
    eval_every: int = 1000
    eval_size: int = 256
    eval_pairs: int = 4
    eval_styles: int = 20
    init_from: str | None = None
    init_training_parts: str = "copy"

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if not 0 <= self.num_exchange_blocks <= 3:
            raise ValueError(f"num_exchange_blocks must be in 0..3, got {self.num_exchange_blocks}")
        if self.mixed_precision not in MIXED_PRECISION_MODES:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION_MODES}, "
                f"got {self.mixed_precision!r}"
            )
        for name in (
            "steps",
            "log_every",
            "summary_every",
            "image_every",
            "checkpoint_every",
            "keep_checkpoints",
            "eval_every",
            "eval_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("save_every_seconds", "max_seconds"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0 or None")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.eq7_lr is not None and not self.eq7_lr > 0:
            raise ValueError(f"eq7_lr must be > 0 or None, got {self.eq7_lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.rec_only_steps < 0 or (self.rec_only_steps and self.model != "efanet"):
            raise ValueError(
                f"rec_only_steps must be 0, or > 0 for the efanet model; got "
                f"{self.rec_only_steps} for {self.model!r}"
            )
        if not self.model_dir:
            raise ValueError("model_dir must be set")
        if (self.eval_content_source is None) != (self.eval_style_source is None):
            raise ValueError(
                "the evaluation curve needs both eval_content_source and eval_style_source"
            )
        if self.init_training_parts not in ("copy", "fresh"):
            raise ValueError(
                f"init_training_parts must be 'copy' or 'fresh', got {self.init_training_parts!r}"
            )
        if self.eval_pairs < 2:
            raise ValueError(
                f"eval_pairs must be >= 2 (style_gain swaps styles), got {self.eval_pairs}"
            )
        self.compressor_filters = tuple(self.compressor_filters)
        self.upsample_filters = tuple(self.upsample_filters)
        self.model_config = dict(self.model_config)
        fields = {f.name for f in dataclasses.fields(self)} | {
            f.name for f in dataclasses.fields(losses_lib.LossConfig)
        }
        both = sorted(set(self.model_config) & fields)
        if both:
            raise ValueError(
                f"model_config sets {both}, which have their own settings: set them there"
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def architecture_changes(self, saved: dict) -> dict[str, tuple]:
        """`{field: (saved, requested)}` where a saved run's config (`to_json`'s dict)
        differs from this one in a field that changes the variables; empty when it
        may be resumed.
        """
        current = json.loads(self.to_json())
        fields = set(MODELS[self.model].architecture)
        fields.update(MODELS[saved["model"]].architecture if saved.get("model") in MODELS else ())
        if "mixed_float16" in (saved.get("mixed_precision"), current["mixed_precision"]):
            # Float16 runs save a LossScaleOptimizer, whose variables differ.
            fields.add("mixed_precision")
        # A field newer than the saved run had its default there (fusion_rank).
        defaults = {
            f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(TrainConfig)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
        return {
            k: (saved.get(k, defaults.get(k)), current.get(k))
            for k in sorted(fields)
            if saved.get(k, defaults.get(k)) != current.get(k)
        }

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Inverse of `to_json` (after `json.loads`)."""
        values = dict(values)
        return cls(
            data=sources.DataConfig(**values.pop("data")),
            loss=losses_lib.LossConfig(**values.pop("loss")),
            **values,
        )


@dataclasses.dataclass
class TrainResult:
    """What `train` reports back.

    Attributes:
      step: Step reached (== config.steps unless stopped early).
      start_step: Step the run resumed from (0 for a fresh run).
      losses: The last `fit` epoch's logs (`loss` is Eq. 7's total), floats.
      steps_per_sec: Average over the steps this run executed (the first,
        compiling step excluded).
      stopped_by: `"SIGTERM"`, `"SIGINT"`, `"max_seconds"`, or None.
      checkpoint: Path of `latest.weights.h5`, or None.
      seconds: Wall time of `run`.
    """

    step: int
    start_step: int
    losses: dict[str, float]
    steps_per_sec: float
    stopped_by: str | None
    checkpoint: str | None
    seconds: float = 0.0


# ----------------------------------------------------------------------------
# Model registry: a model name picks its network (which owns its objective).
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build one model family.

    Attributes:
      build: `TrainConfig -> keras.Model` with a `compute_loss` for `fit`
        (`objective.ObjectiveMixin`) whose `call(content, style, ...)` returns
        a dict with at least `"s2c"`.
      architecture: `TrainConfig` fields that change the variables; a
        checkpoint is only resumed when they all match.
    """

    build: Callable[[TrainConfig], keras.Model]
    architecture: tuple[str, ...]


def with_options(config: TrainConfig, options: dict) -> TrainConfig:
    """`config` with `options` applied: each key a `TrainConfig` field, a `LossConfig` field
    (`loss`) or else a model constructor argument (`model_config`), as a flag file would set it.

    E.g. `{"fusion_mode": "adain", "exchange_targets": "detached", "style_statistics": True}`
    sets one field of each kind; the new config is validated like any other.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"loss", "data", "model_config"}
    loss_fields = {f.name for f in dataclasses.fields(losses_lib.LossConfig)}
    top = {k: v for k, v in options.items() if k in fields}
    loss = {k: v for k, v in options.items() if k in loss_fields}
    model = {k: v for k, v in options.items() if k not in fields and k not in loss_fields}
    return dataclasses.replace(
        config,
        loss=dataclasses.replace(config.loss, **loss),
        model_config={**config.model_config, **model},
        **top,
    )


def _construct(cls, cfg: TrainConfig, **kwargs) -> keras.Model:
    """`cls(**kwargs, **cfg.model_config)`: Keras names an unknown option."""
    return cls(**kwargs, **cfg.model_config)


def _build_efanet(cfg: TrainConfig) -> keras.Model:
    return _construct(
        ExchangeStyleTransfer,
        cfg,
        vgg_weights=cfg.vgg_weights,
        code_dim=cfg.code_dim,
        num_exchange_blocks=cfg.num_exchange_blocks,
        share_exchange_block=cfg.share_exchange_block,
        compressor_filters=cfg.compressor_filters,
        fusion_mode=cfg.fusion_mode,
        num_pre_fusion_blocks=cfg.num_pre_fusion_blocks,
        num_post_fusion_blocks=cfg.num_post_fusion_blocks,
        upsample_filters=cfg.upsample_filters,
        initialization=cfg.initialization,
        fusion_rank=cfg.fusion_rank,
        **dataclasses.asdict(cfg.loss),
    )


def _build_adain(cfg: TrainConfig) -> keras.Model:
    return _construct(
        adain_lib.AdaINNet,
        cfg,
        vgg_weights=cfg.vgg_weights,
        upsample_filters=cfg.upsample_filters,
        adain_style_weight=cfg.adain_style_weight,
    )


MODELS: dict[str, ModelSpec] = {
    "efanet": ModelSpec(
        build=_build_efanet,
        architecture=(
            "model",
            "num_exchange_blocks",
            "share_exchange_block",
            "fusion_mode",
            "compressor_filters",
            "code_dim",
            "num_pre_fusion_blocks",
            "num_post_fusion_blocks",
            "upsample_filters",
            "fusion_rank",
            "model_config",
        ),
    ),
    # The AdaIN baseline [11] trained on the same data and VGG for comparisons.
    "adain": ModelSpec(
        build=_build_adain, architecture=("model", "upsample_filters", "model_config")
    ),
}
