"""Training loop of Sec. 3.5: distribution, checkpoints, summaries, resume and NaN guard."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from exchange_st import checkpoints
from exchange_st import data as data_lib
from exchange_st import image_io
from exchange_st import losses as losses_lib
from exchange_st import tf_checks
from exchange_st.baselines import adain as adain_lib
from exchange_st.model import ExchangeStyleTransfer

MIXED_PRECISION_MODES = ("none", "mixed_float16", "mixed_bfloat16")
# The loss terms shown on the console progress line (all go to TensorBoard).
_CONSOLE_TERMS = ("content", "style", "rec", "com")
# Consecutive float16 steps with non-finite gradients (skipped by the loss
# scale optimizer) before the run is declared diverged.
_MAX_SKIPPED_STEPS = 50
# Examples of the batch shown in the image summary.
_MAX_GRID_EXAMPLES = 2
# Order of the image summary columns: inputs, stylizations, reconstructions.
_GRID_COLUMNS = ("content", "style", "s2c", "c2s", "c2c", "s2s")
_GRID_TITLES = {
    "content": "I_c",
    "style": "I_s",
    "s2c": "I_s->c",
    "c2s": "I_c->s",
    "c2c": "I_c->c",
    "s2s": "I_s->s",
}


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; written to `model_dir/config.json`.

    Model attributes default to the paper (Sec. 3.5); the decoder sizes exist
    so tests can build a small network, not as tuning knobs.

    Attributes:
      data: Input pipeline (`data.DataConfig`); `data.batch_size` is the
        global batch, split evenly across replicas.
      model_dir: Directory of checkpoints, `config.json` and summaries (`train/`).
      loss: Weights of Eq. 7 and the orthogonality form of Eq. 6.
      model: Key of `MODELS`: `"efanet"` (this paper) or a baseline.
      num_exchange_blocks: Feature Exchange blocks, 0-3 (3 in the paper).
      share_exchange_block: Iterate one shared block instead of distinct ones.
      fusion_mode: `"ours"`, `"adain"` or `"concat"` (Fig. 8 ablation).
      compressor_filters: Conv widths of the covariance compressor.
      code_dim: Size of the style codes (256).
      num_pre_fusion_blocks, num_post_fusion_blocks: Decoder residual blocks
        before / after fusion (3 / 2).
      upsample_filters: Widths of the decoder's three upsampling stages.
      adain_style_weight: lambda of the AdaIN baseline's `L_c + lambda L_s`
        (10 in [11]'s training script); only used by `model="adain"`, which
        ignores `loss` and the exchange-model attributes.
      vgg_weights: `"imagenet"`, a Keras notop h5 path, or None (random
        weights: the losses are then meaningless, smoke runs only).
      lr: Adam learning rate (1e-4; default betas, Sec. 3.5).
      steps: Total optimizer steps (350000); a resumed run continues to it.
      seed: Seed of weight init and data; None = random.
      log_every: Steps between console progress lines.
      summary_every: Steps between scalar summaries.
      image_every: Steps between image-grid summaries.
      checkpoint_every: Steps between checkpoints (one is also written at the
        end and on SIGINT/SIGTERM).
      keep_checkpoints: Checkpoints kept on disk.
      mixed_precision: `"none"`, `"mixed_float16"` (with loss scaling) or
        `"mixed_bfloat16"`.
      jit_compile: Compile the forward/backward pass with XLA.
    """

    data: data_lib.DataConfig
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
    adain_style_weight: float = 10.0
    vgg_weights: str | None = "imagenet"
    lr: float = 1e-4
    steps: int = 350_000
    seed: int | None = None
    log_every: int = 100
    summary_every: int = 100
    image_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 5
    mixed_precision: str = "none"
    jit_compile: bool = False

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
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.model_dir:
            raise ValueError("model_dir must be set")
        self.compressor_filters = tuple(self.compressor_filters)
        self.upsample_filters = tuple(self.upsample_filters)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


# ----------------------------------------------------------------------------
# Model registry: a model name picks its network and its objective.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build and train one model family.

    Attributes:
      build: `TrainConfig -> keras.Model`; the model's `call(content, style,
        training=...)` returns a dict with at least `"s2c"`.
      loss: `(outputs, content, style, model, TrainConfig) -> dict` of scalar
        per-example-mean terms including `"total"`.
      architecture: `TrainConfig` fields that change the variables; a
        checkpoint is only resumed when they all match.
    """

    build: Callable[[TrainConfig], keras.Model]
    loss: Callable[..., dict[str, tf.Tensor]]
    architecture: tuple[str, ...]


def _build_efanet(cfg: TrainConfig) -> keras.Model:
    return ExchangeStyleTransfer(
        vgg_weights=cfg.vgg_weights,
        code_dim=cfg.code_dim,
        num_exchange_blocks=cfg.num_exchange_blocks,
        share_exchange_block=cfg.share_exchange_block,
        compressor_filters=cfg.compressor_filters,
        fusion_mode=cfg.fusion_mode,
        num_pre_fusion_blocks=cfg.num_pre_fusion_blocks,
        num_post_fusion_blocks=cfg.num_post_fusion_blocks,
        upsample_filters=cfg.upsample_filters,
    )


def _efanet_losses(outputs, content, style, model, cfg: TrainConfig):
    return losses_lib.compute_losses(outputs, content, style, model.encoder, cfg.loss)


def _build_adain(cfg: TrainConfig) -> keras.Model:
    return adain_lib.AdaINNet(vgg_weights=cfg.vgg_weights, upsample_filters=cfg.upsample_filters)


def _adain_losses(outputs, content, style, model, cfg: TrainConfig):
    return adain_lib.adain_losses(
        outputs, content, style, model.encoder, style_weight=cfg.adain_style_weight
    )


MODELS: dict[str, ModelSpec] = {
    "efanet": ModelSpec(
        build=_build_efanet,
        loss=_efanet_losses,
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
        ),
    ),
    # The AdaIN baseline [11] trained on the same data and VGG for comparisons.
    "adain": ModelSpec(
        build=_build_adain,
        loss=_adain_losses,
        architecture=("model", "upsample_filters"),
    ),
}


# ----------------------------------------------------------------------------
# Distribution.
# ----------------------------------------------------------------------------


def make_strategy() -> tf.distribute.Strategy:
    """Multi-worker if `TF_CONFIG` is set, mirrored over >1 GPU, else default."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


@dataclasses.dataclass
class TrainResult:
    """What `train` reports back.

    Attributes:
      step: Step reached (== config.steps unless stopped by a signal).
      start_step: Step the run resumed from (0 for a fresh run).
      losses: Last step's reduced loss terms (floats).
      steps_per_sec: Average over the steps this run executed.
      stopped_by: Name of the signal that stopped the run, or None.
      checkpoint: Path of the latest checkpoint.
    """

    step: int
    start_step: int
    losses: dict[str, float]
    steps_per_sec: float
    stopped_by: str | None
    checkpoint: str | None


class Trainer:
    """Owns the strategy, model, optimizer, checkpoints and the train step.

    `train(config)` is the entry point; the class is public so tests and
    notebooks can restore a run and drive single steps. `train` also sets
    the Keras dtype policy for `mixed_precision`; a `Trainer` built directly
    uses whatever policy is current.

    Args:
      config: `TrainConfig`.
      strategy: A `tf.distribute.Strategy`; default `make_strategy()`.
      dataset_fn: `tf.distribute.InputContext -> tf.data.Dataset` of
        per-replica batches `{"content", "style"}`; default builds
        `data.make_pair_dataset` from `config.data`. A hook for tests and
        custom pipelines.
    """

    def __init__(
        self,
        config: TrainConfig,
        strategy: tf.distribute.Strategy | None = None,
        dataset_fn: Callable[[tf.distribute.InputContext], tf.data.Dataset] | None = None,
    ):
        self.config = config
        self.spec = MODELS[config.model]
        self.strategy = strategy or make_strategy()
        self.is_chief = _is_chief(self.strategy)
        self._dataset_fn = dataset_fn
        replicas = self.strategy.num_replicas_in_sync
        if config.data.batch_size % replicas:
            raise ValueError(
                f"batch_size {config.data.batch_size} must be divisible by the "
                f"{replicas} replicas in sync"
            )
        if config.vgg_weights is None:
            logging.warning(
                "\n%s\nvgg_weights=None: the VGG encoder has RANDOM weights. The "
                "perceptual losses and every result of this run are MEANINGLESS; "
                "use this only for smoke tests. Pass --vgg_weights=imagenet or the "
                "path of vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.\n%s",
                "!" * 78,
                "!" * 78,
            )
        if config.seed is not None:
            keras.utils.set_random_seed(config.seed)

        with self.strategy.scope():
            self.model = self.spec.build(config)
            self.model.build()
            self.optimizer = keras.optimizers.Adam(learning_rate=config.lr)
            self.loss_scaled = config.mixed_precision == "mixed_float16"
            if self.loss_scaled:
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.variables = list(self.model.trainable_variables)
            self._check_encoder_frozen()
            # Adam's slots exist before restore, so their values are restored
            # eagerly instead of deferred to the first step.
            self.optimizer.build(self.variables)
            self.step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step
        )
        # A variable the checkpoint cannot reach would be re-initialised on
        # every resume. (Adam also references the trainable variables, so
        # the model is checked on its own.)
        checkpoints.assert_checkpointable(self.model)
        checkpoints.assert_checkpointable(self.optimizer)
        self.checkpoint_dir = config.model_dir if self.is_chief else self._worker_temp_dir()
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            self.checkpoint_dir,
            max_to_keep=config.keep_checkpoints,
            step_counter=self.step,
            checkpoint_interval=config.checkpoint_every,
        )
        self._grad_fn = tf.function(self._forward_backward, jit_compile=config.jit_compile)
        self._step_fn = tf.function(self._distributed_step)
        self._images_fn = tf.function(self._predict_images)
        self._skipped_in_a_row = 0

    # -- setup ---------------------------------------------------------------

    def _check_encoder_frozen(self):
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            return
        frozen = {id(v) for v in encoder.weights}
        leaked = [v.path for v in self.variables if id(v) in frozen]
        # The fixed VGG of Sec. 3.1 must never receive gradient updates.
        if leaked:
            raise AssertionError(f"VGG encoder variables are trainable: {leaked[:3]}")
        if not self.variables:
            raise AssertionError("the model has no trainable variables")

    def _worker_temp_dir(self) -> str:
        # Every MultiWorkerMirroredStrategy worker must take part in a save;
        # only the chief's copy is kept.
        resolver = self.strategy.cluster_resolver
        return os.path.join(self.config.model_dir, f"tmp_{resolver.task_type}_{resolver.task_id}")

    def restore(self) -> int:
        """Restores the latest checkpoint of `model_dir`, if any; returns its step.

        Raises:
          ValueError: `model_dir` holds a run of a different architecture.
        """
        latest = tf.train.latest_checkpoint(self.config.model_dir)
        if latest is None:
            return 0
        self._check_saved_architecture()
        status = self.checkpoint.restore(latest)
        # Every variable of the model and optimizer must come from the file;
        # a silent partial restore would resume with fresh weights.
        status.assert_existing_objects_matched()
        step = int(self.step.numpy())
        logging.info("Resumed from step %d (%s).", step, latest)
        return step

    def _check_saved_architecture(self):
        saved = checkpoints.read_run_config(self.config.model_dir)
        if not saved:
            return
        current = json.loads(self.config.to_json())
        fields = set(self.spec.architecture)
        fields.update(MODELS[saved["model"]].architecture if saved.get("model") in MODELS else ())
        if "mixed_float16" in (saved.get("mixed_precision"), current["mixed_precision"]):
            # Float16 runs checkpoint a LossScaleOptimizer, whose slots live
            # elsewhere in the object graph.
            fields.add("mixed_precision")
        diff = {
            k: (saved.get(k), current.get(k))
            for k in sorted(fields)
            if saved.get(k) != current.get(k)
        }
        if diff:
            details = ", ".join(
                f"{k}: saved {a!r} vs requested {b!r}" for k, (a, b) in diff.items()
            )
            raise ValueError(
                f"Refusing to resume: {self.config.model_dir} holds a checkpoint of a "
                f"different architecture ({details}). Use a new --model_dir or the "
                "saved settings."
            )

    def write_config(self):
        """Writes the resolved config as `model_dir/config.json` (chief only)."""
        if not self.is_chief:
            return
        tf.io.gfile.makedirs(self.config.model_dir)
        path = os.path.join(self.config.model_dir, checkpoints.CONFIG_FILE)
        tmp = path + ".tmp"
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(self.config.to_json())
        tf.io.gfile.rename(tmp, path, overwrite=True)

    def distributed_dataset(self, start_step: int = 0):
        """The per-replica input pipeline, reseeded by `start_step` on resume."""
        cfg = self.config
        data_cfg = cfg.data
        if data_cfg.seed is None and cfg.seed is not None:
            data_cfg = dataclasses.replace(data_cfg, seed=cfg.seed)
        if start_step and data_cfg.seed is not None:
            # A resumed run draws fresh crops instead of replaying the ones
            # the first `start_step` steps already saw.
            data_cfg = dataclasses.replace(data_cfg, seed=data_cfg.seed + 1_000_003 * start_step)

        def default_fn(ctx):
            per_replica = ctx.get_per_replica_batch_size(data_cfg.batch_size)
            return data_lib.make_pair_dataset(data_cfg, batch_size=per_replica, input_context=ctx)

        return self.strategy.distribute_datasets_from_function(self._dataset_fn or default_fn)

    # -- the step ------------------------------------------------------------

    def _forward_backward(self, content, style):
        # The backend-neutral model checks value ranges only on concrete
        # tensors; in this graph the TF edge asserts them.
        content = tf_checks.check_images(content, "content")
        style = tf_checks.check_images(style, "style")
        with tf.GradientTape() as tape:
            outputs = self.model(content, style, training=True)
            losses = self.spec.loss(outputs, content, style, self.model, self.config)
            # Every term is already a mean over this replica's examples; the
            # optimizer all-reduces gradients by SUM, so dividing by the replica
            # count makes the update the gradient of the global-batch mean.
            loss = losses["total"] / tf.cast(self.strategy.num_replicas_in_sync, tf.float32)
            if self.loss_scaled:
                loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, self.variables)
        return losses, grads

    def _replica_step(self, batch):
        losses, grads = self._grad_fn(batch["content"], batch["style"])
        # Norm of the gradient of this replica's own mean loss (undoing the
        # division above; averaged over replicas when reduced): a health
        # signal, and the guard that keeps a non-finite update from being
        # checkpointed. The norm of the all-reduced gradient would cost a
        # second all-reduce.
        losses = dict(losses)
        norm = tf.linalg.global_norm([g for g in grads if g is not None])
        if self.loss_scaled:
            norm = norm / tf.cast(self.optimizer.dynamic_scale, norm.dtype)
        losses["grad_norm"] = norm * tf.cast(self.strategy.num_replicas_in_sync, norm.dtype)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return losses

    def _distributed_step(self, batch):
        per_replica = self.strategy.run(self._replica_step, args=(batch,))
        self.step.assign_add(1)
        return {
            k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    def train_step(self, batch) -> dict[str, float]:
        """One optimizer step on a distributed batch; returns reduced losses."""
        return {k: float(v) for k, v in self._step_fn(batch).items()}

    def _predict_images(self, content, style):
        outputs = self.model(content, style, training=False)
        return {k: outputs[k] for k in _GRID_COLUMNS if k in outputs}

    # -- the loop ------------------------------------------------------------

    def run(self) -> TrainResult:
        """Restores, trains to `config.steps`, saves; see `train`."""
        cfg = self.config
        start_step = self.restore()
        self.write_config()
        step = start_step
        losses: dict[str, float] = {}
        stopped_by = None
        if start_step >= cfg.steps:
            logging.info(
                "Checkpoint is at step %d >= steps=%d; nothing to do.", start_step, cfg.steps
            )
            return TrainResult(step, start_step, losses, 0.0, None, self.manager.latest_checkpoint)

        writer = (
            tf.summary.create_file_writer(os.path.join(cfg.model_dir, "train"))
            if self.is_chief
            else tf.summary.create_noop_writer()
        )
        iterator = iter(self.distributed_dataset(start_step))
        stop = _StopFlag()
        logging.info(
            "Training %s from step %d to %d on %d replica(s), global batch %d.",
            cfg.model,
            start_step,
            cfg.steps,
            self.strategy.num_replicas_in_sync,
            cfg.data.batch_size,
        )
        t_start = time.perf_counter()
        # The first step traces and compiles; rates start after it.
        t_after_first, step_after_first = None, None
        log_rate, summary_rate = _RateMeter(), _RateMeter()
        with stop, writer.as_default(step=step):
            while step < cfg.steps:
                batch = next(iterator)
                losses = self.train_step(batch)
                step += 1
                self._check_finite(step, losses)
                now = time.perf_counter()
                if t_after_first is None:
                    t_after_first, step_after_first = now, step
                    log_rate.update(step, now)
                    summary_rate.update(step, now)
                if step % cfg.summary_every == 0:
                    self._write_scalars(step, losses, summary_rate.update(step, now))
                if step % cfg.image_every == 0:
                    self._write_images(step, batch)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    _log_progress(step, cfg.steps, losses, log_rate.update(step, now))
                if step % cfg.checkpoint_every == 0:
                    # At multiples of the interval (not "interval steps after
                    # the last save"), so resumed runs keep the same grid.
                    self.manager.save(checkpoint_number=step, check_interval=False)
                if stop.signum is not None:
                    stopped_by = signal.Signals(stop.signum).name
                    break
            self._save_final(step)
            writer.flush()
        elapsed = time.perf_counter() - t_start
        timed = step - step_after_first
        avg_rate = timed / (now - t_after_first) if timed else float("nan")
        if stopped_by:
            logging.info(
                "Stopped by %s at step %d/%d; checkpoint saved (%s). Rerun the same "
                "command to resume.",
                stopped_by,
                step,
                cfg.steps,
                self.manager.latest_checkpoint,
            )
        logging.info(
            "Done: step %d/%d, %d steps in %s (%.3g steps/s after the first), final total loss %.5g.",
            step,
            cfg.steps,
            step - start_step,
            _format_duration(elapsed),
            avg_rate,
            losses.get("total", float("nan")),
        )
        if not self.is_chief:
            tf.io.gfile.rmtree(self.checkpoint_dir)
        return TrainResult(
            step, start_step, losses, avg_rate, stopped_by, self.manager.latest_checkpoint
        )

    def _check_finite(self, step, losses):
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if self.loss_scaled and bad == ["grad_norm"]:
            # LossScaleOptimizer skipped this update and lowers the scale;
            # that happens early in a run, but not for long.
            self._skipped_in_a_row += 1
            if self._skipped_in_a_row < _MAX_SKIPPED_STEPS:
                return
            bad = [f"grad_norm (non-finite for {self._skipped_in_a_row} steps in a row)"]
            losses = {**losses, bad[0]: losses["grad_norm"]}
        else:
            self._skipped_in_a_row = 0
        if bad:
            raise FloatingPointError(
                f"Non-finite loss at step {step}: {', '.join(f'{k}={losses[k]}' for k in bad)}. "
                f"Stopping without saving; the last good checkpoint is "
                f"{self.manager.latest_checkpoint}. Lower --lr or check the inputs."
            )

    def _save_final(self, step):
        latest = self.manager.latest_checkpoint
        if latest is None or not latest.endswith(f"-{step}"):
            self.manager.save(checkpoint_number=step, check_interval=False)

    def _write_scalars(self, step, losses, rate):
        for name, value in losses.items():
            write_scalar(f"train/{name}", value, step)
        write_scalar("train/learning_rate", float(np.asarray(self.optimizer.learning_rate)), step)
        if math.isfinite(rate):
            write_scalar("train/steps_per_sec", rate, step)

    def _write_images(self, step, batch):
        local = self.strategy.experimental_local_results(batch)[0]
        content = local["content"][:_MAX_GRID_EXAMPLES]
        style = local["style"][:_MAX_GRID_EXAMPLES]
        outputs = self._images_fn(content, style)
        columns = {"content": content, "style": style, **outputs}
        keys = [k for k in _GRID_COLUMNS if k in columns]
        grid = image_grid([[columns[k][i] for k in keys] for i in range(content.shape[0])])
        write_image(
            "train/images",
            grid,
            step,
            description="Rows: examples. Columns: " + ", ".join(_GRID_TITLES[k] for k in keys),
        )


# TensorBoard is not a dependency: summaries are written with the raw
# `tf.summary.write` and the plugin metadata TensorBoard's own ops would add,
# so TensorBoard (installed wherever it is used) reads them as usual.
def write_scalar(name: str, value: float, step: int):
    """Scalar summary readable by TensorBoard's scalars dashboard."""
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)


def write_image(name: str, image: np.ndarray, step: int, description: str = ""):
    """PNG image summary `[H, W, 3]` in [0, 1] for TensorBoard's images dashboard."""
    metadata = summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
    )
    pixels = tf.image.convert_image_dtype(np.clip(image, 0.0, 1.0), tf.uint8, saturate=True)
    height, width = image.shape[:2]
    # The images plugin's layout: [width, height, png, png, ...] as strings.
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), tf.io.encode_png(pixels)])
    tf.summary.write(name, tensor, step=step, metadata=metadata)


def image_grid(rows) -> np.ndarray:
    """Tiles `[H, W, 3]` images (clipped to [0, 1]) into one `[H', W', 3]` figure."""
    rows = [
        [np.clip(np.nan_to_num(np.asarray(c, np.float32)), 0.0, 1.0) for c in row] for row in rows
    ]
    return image_io.make_grid(rows, pad=2)


class _StopFlag:
    """Context manager turning SIGINT/SIGTERM into a flag the loop checks each step.

    Handlers can only be installed from the main thread; elsewhere the
    default behaviour stays (a kill loses at most one checkpoint interval).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        if self.signum is None:
            logging.warning(
                "Received %s: saving a checkpoint after the current step.",
                signal.Signals(signum).name,
            )
        self.signum = signum

    def __enter__(self):
        try:
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        except ValueError:
            logging.warning("Not in the main thread: SIGINT/SIGTERM will not save a checkpoint.")
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


class _RateMeter:
    """Steps per second since the previous `update` (NaN on the first call)."""

    def __init__(self):
        self._last = None

    def update(self, step: int, now: float) -> float:
        last, self._last = self._last, (step, now)
        if last is None or step == last[0] or now <= last[1]:
            return float("nan")
        return (step - last[0]) / (now - last[1])


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _log_progress(step, total, losses, rate):
    terms = "  ".join(f"{k} {losses[k]:.4g}" for k in _CONSOLE_TERMS if k in losses)
    eta = (total - step) / rate if rate > 0 else float("nan")
    logging.info(
        "step %d/%d  total %.5g  %s  %.3g steps/s  ETA %s",
        step,
        total,
        losses["total"],
        terms,
        rate,
        _format_duration(eta),
    )


def train(
    config: TrainConfig,
    strategy: tf.distribute.Strategy | None = None,
    dataset_fn: Callable[[tf.distribute.InputContext], tf.data.Dataset] | None = None,
) -> TrainResult:
    """Trains (or resumes) a model as configured.

    Restores the latest checkpoint of `config.model_dir` (same architecture
    only), writes `config.json`, runs to `config.steps` with summaries under
    `model_dir/train` and checkpoints every `checkpoint_every` steps, at the
    end and on SIGINT/SIGTERM (then returns with `stopped_by` set).

    Args:
      config: `TrainConfig`.
      strategy: Optional `tf.distribute.Strategy` (default `make_strategy()`).
      dataset_fn: Optional input pipeline override (see `Trainer`).

    Returns:
      `TrainResult`.

    Raises:
      FloatingPointError: A loss term or the gradient became NaN/Inf; nothing
        of that step is saved.
      ValueError: Bad config, or `model_dir` holds a different architecture.
    """
    previous_policy = keras.config.dtype_policy()
    policy = "float32" if config.mixed_precision == "none" else config.mixed_precision
    keras.config.set_dtype_policy(policy)
    try:
        return Trainer(config, strategy, dataset_fn).run()
    finally:
        keras.config.set_dtype_policy(previous_policy)
