"""Training of Sec. 3.5 with `keras.Model.fit`, on TensorFlow or JAX.

The model owns its objective (`compute_loss`, per-term metrics), so one
`model.compile(optimizer=optim.make_optimizer(...))` + `model.fit(...)`
trains on either backend. This module picks the data pipeline (tf.data on
TensorFlow, the `pydata` PyDataset elsewhere), the distribution
(`tf.distribute` strategies / `keras.distribution.DataParallel`), restores
the latest state of `model_dir`, sizes `fit` to the remaining steps and
wires the callbacks of `exchange_st.training.callbacks`.

TensorFlow is imported only on the TensorFlow backend (or for the optional
TensorBoard summaries), so `KERAS_BACKEND=jax` runs without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time

import keras
from absl import logging

from exchange_st.data import pydata, sources
from exchange_st.saving import serialization
from exchange_st.training import callbacks as cb
from exchange_st.evaluation import learning_report
from exchange_st.training import distribute, evaluation_curve, optim, run_control, warm_start
from exchange_st.training import history as history_lib
from exchange_st.training.train_config import MODELS, TrainConfig, TrainResult

# Examples of the image grid.
_MAX_GRID_EXAMPLES = 2
CSV_FILE = "train_log.csv"


class Trainer:
    """Builds, compiles, restores and fits the model of a `TrainConfig`.

    `train(config)` is the entry point; the class is public so tests and
    notebooks can restore a run and inspect the model. `train` also sets
    the Keras dtype policy (and, on JAX with several devices, the
    distribution); a `Trainer` built directly uses whatever is current.

    Args:
      config: `TrainConfig`.
      strategy: TensorFlow only: a `tf.distribute.Strategy`; default
        `distribute.make_strategy()`.
      dataset_fn: `start_step -> dataset` that `fit` accepts (a
        `tf.data.Dataset` or a `keras.utils.PyDataset`) of infinite global
        batches `{"content", "style"}`; default: the configured pipeline,
        reseeded by the start step. A hook for tests and custom pipelines.
    """

    def __init__(self, config: TrainConfig, strategy=None, dataset_fn=None):
        self.config = config
        self.spec = MODELS[config.model]
        self.backend = keras.backend.backend()
        self._dataset_fn = dataset_fn
        self.strategy = None
        self.is_chief = True
        if self.backend == "tensorflow":
            self.strategy = strategy or distribute.make_strategy()
            self.is_chief = distribute.is_chief(self.strategy)
            replicas = self.strategy.num_replicas_in_sync
        else:
            distribution = keras.distribution.distribution()
            replicas = len(distribution.device_mesh.devices.flat) if distribution else 1
        if config.data.batch_size % replicas:
            raise ValueError(
                f"batch_size {config.data.batch_size} must be divisible by the "
                f"{replicas} replicas in sync"
            )
        self.replicas = replicas
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
        with self._scope():
            self.model = self.spec.build(config)
            self.model.build()
            if self.backend == "tensorflow":
                # A variable a TF object graph cannot reach would be left out
                # of exported SavedModels (and legacy checkpoints). Checked
                # before compile: the optimizer would reach the variables too.
                serialization.assert_checkpointable(self.model)
            self.model.compile(
                optimizer=optim.make_optimizer(config.lr, config.warmup_steps),
                # JAX runs an uncompiled train step op by op: always compile.
                jit_compile=True if self.backend == "jax" else config.jit_compile,
            )
            self.optimizer = self.model.optimizer
            # Adam's slots exist before a restore, so it fills them at once.
            self.optimizer.build(self.model.trainable_variables)
        self.variables = list(self.model.trainable_variables)
        self._check_encoder_frozen()
        self.checkpoint = run_control.Checkpoint(
            config.model_dir,
            every_steps=config.checkpoint_every,
            every_seconds=config.save_every_seconds,
            keep=config.keep_checkpoints,
            chief=self.is_chief,
        )

    def _scope(self):
        if self.strategy is not None:
            return self.strategy.scope()
        return contextlib.nullcontext()

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

    # -- state ---------------------------------------------------------------

    def restore(self) -> int:
        """Restores `model_dir/latest.weights.h5` (weights, Adam, step), if any; returns the step.

        Raises:
          ValueError: `model_dir` holds a run of a different architecture.
        """
        cfg = self.config
        if self.is_chief:
            serialization.remove_stale_temporaries(cfg.model_dir)
        if os.path.isfile(self.checkpoint.path):
            self._check_saved_architecture()
            step = self.checkpoint.restore(self.model)
            logging.info("Resumed from step %d (%s).", step, self.checkpoint.path)
            if cfg.init_from:
                logging.info(
                    "init_from=%s is not used: the run resumes its own state.", cfg.init_from
                )
            self.phases = history_lib.read(cfg.model_dir) + [history_lib.new_phase(cfg, step)]
            return step
        if not cfg.init_from:
            self.phases = [history_lib.new_phase(cfg, 0)]
            return 0
        start = warm_start.load_into(self.model, cfg.init_from, cfg.init_training_parts)
        step = self.checkpoint.step = start["step"]
        self.phases = start["history"] + [history_lib.new_phase(cfg, step, cfg.init_from)]
        return step

    def _check_saved_architecture(self):
        saved = serialization.read_run_config(self.config.model_dir)
        diff = self.config.architecture_changes(saved) if saved else {}
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
        if self.is_chief:
            os.makedirs(self.config.model_dir, exist_ok=True)
            path = os.path.join(self.config.model_dir, serialization.CONFIG_FILE)
            cb.write_json(path, json.loads(self.config.to_json()))

    # -- data ----------------------------------------------------------------

    def data_config(self, start_step: int = 0) -> sources.DataConfig:
        """`config.data`, seeded by `config.seed`, reseeded by `start_step` on resume."""
        data_cfg = self.config.data
        if data_cfg.seed is None and self.config.seed is not None:
            data_cfg = dataclasses.replace(data_cfg, seed=self.config.seed)
        if start_step and data_cfg.seed is not None:
            # A resumed run draws fresh crops instead of replaying the ones
            # the first `start_step` steps already saw.
            data_cfg = dataclasses.replace(data_cfg, seed=data_cfg.seed + 1_000_003 * start_step)
        return data_cfg

    def uses_tf_data(self) -> bool:
        pipeline = self.config.data.pipeline
        return pipeline == "tf" or (pipeline == "auto" and self.backend == "tensorflow")

    def dataset(self, start_step: int = 0):
        """The input `fit` reads: global batches, or per-replica ones under a TF strategy.

        A `tf.data` input gets the in-graph value checks of `tf_checks` (the
        model checks values only where they are concrete, not in fit's graph).
        """
        if self._dataset_fn is not None:
            return _with_input_checks(self._dataset_fn(start_step))
        data_cfg = self.data_config(start_step)
        if not self.uses_tf_data():
            return pydata.PairDataset(data_cfg)
        from exchange_st.data import pipeline as data_lib  # TensorFlow.

        if self.strategy is not None and self.strategy.num_replicas_in_sync > 1:
            # Each input pipeline reads its own shard with its own seeds.
            def per_replica(ctx):
                batch = ctx.get_per_replica_batch_size(data_cfg.batch_size)
                return _with_input_checks(
                    data_lib.make_pair_dataset(data_cfg, batch_size=batch, input_context=ctx)
                )

            return self.strategy.distribute_datasets_from_function(per_replica)
        return _with_input_checks(data_lib.make_pair_dataset(data_cfg))

    def sample_batch(self, start_step: int = 0, examples: int = _MAX_GRID_EXAMPLES):
        """A fixed batch for the image grid, from an undistributed copy of the input."""
        if self._dataset_fn is not None:
            source = self._dataset_fn(start_step)
        else:
            data_cfg = dataclasses.replace(self.data_config(start_step), workers=1)
            if self.uses_tf_data():
                from exchange_st.data import pipeline as data_lib

                source = data_lib.make_pair_dataset(data_cfg)
            else:
                source = pydata.PairDataset(data_cfg)
        batch = source[0] if isinstance(source, keras.utils.PyDataset) else next(iter(source))
        return {k: keras.ops.convert_to_numpy(batch[k])[:examples] for k in ("content", "style")}

    # -- the run -------------------------------------------------------------

    def train_step(self, batch) -> dict[str, float]:
        """One optimizer step on `batch` (the step `fit` compiles); returns its logs.

        The metrics are reset first, so the values are this step's. For
        benchmarks and notebooks; `run` trains with `fit`.
        """
        self.model.reset_metrics()
        logs = self.model.train_on_batch(batch, return_dict=True)
        return {k: float(v) for k, v in logs.items()}

    def callbacks(self, start_step: int, start_time: float):
        """The `fit` callbacks, in the order they must run after each batch."""
        cfg = self.config
        guard = run_control.NonFiniteGuard(self.checkpoint, start_step)
        stop = run_control.StopControl(
            self.checkpoint, cfg.steps, start_step, cfg.max_seconds, start_time=start_time
        )
        # NaN check first, then the step's saves; the StopControl's final save
        # comes after the periodic one (a no-op when that step is saved).
        callbacks = [guard, self.checkpoint, stop]
        if not self.is_chief:
            return callbacks
        progress = cb.ProgressLogger(cfg.steps, start_step, cfg.max_seconds, start_time)
        callbacks.append(progress)
        tf = cb.tensorflow_or_none()
        logdir = os.path.join(cfg.model_dir, "train")
        if tf is not None:
            callbacks.append(cb.ScalarSummaries(tf, logdir, cfg.summary_every, start_step))
        else:
            logging.info("No TensorFlow: no TensorBoard summaries (the CSV log and PNGs only).")
        sample = self.sample_batch(start_step)
        images = os.path.join(cfg.model_dir, "images")
        callbacks.append(cb.ImageGrid(sample, images, cfg.image_every, start_step, tf, logdir))
        csv_path = os.path.join(cfg.model_dir, CSV_FILE)
        callbacks.append(cb.CSVLog(csv_path))
        phases = getattr(self, "phases", None) or [history_lib.new_phase(cfg, start_step)]
        callbacks.append(history_lib.RunHistory(cfg.model_dir, phases, start_step))
        if cfg.eval_content_source is not None:
            eval_set = learning_report.load_eval_set(
                cfg.eval_content_source,
                cfg.eval_style_source,
                cfg.eval_size,
                cfg.eval_pairs,
                cfg.eval_styles,
            )
            callbacks.append(
                evaluation_curve.EvaluationCurve(
                    eval_set, cfg.model_dir, cfg.eval_every, start_step, tf, logdir
                )
            )
        return callbacks

    def run(self, start_time: float | None = None) -> TrainResult:
        """Restores, fits to `config.steps` (or a stop), saves; see `train`.

        Args:
          start_time: `time.monotonic()` from which `max_seconds` counts;
            default now.
        """
        t_start = time.monotonic() if start_time is None else start_time
        cfg = self.config
        start_step = self.restore()
        self.write_config()
        self.checkpoint.step = start_step
        if start_step >= cfg.steps:
            logging.info(
                "Checkpoint is at step %d >= steps=%d; nothing to do.", start_step, cfg.steps
            )
            return TrainResult(start_step, start_step, {}, 0.0, None, self.checkpoint.latest)
        callbacks = self.callbacks(start_step, t_start)
        stop = next(c for c in callbacks if isinstance(c, run_control.StopControl))
        logging.info(
            "Training %s (%s backend) from step %d to %d on %d replica(s), global batch %d.",
            cfg.model,
            self.backend,
            start_step,
            cfg.steps,
            self.replicas,
            cfg.data.batch_size,
        )
        # One `fit` per phase of the objective: Eq. 5 alone up to
        # `rec_only_steps`, then Eq. 7. The step is retraced between them.
        phases = [(min(cfg.rec_only_steps, cfg.steps), True), (cfg.steps, False)]
        history = None
        for end, reconstruction_only in phases:
            if stop.step >= end or stop.stopped_by:
                continue
            switch = not reconstruction_only and 0 < cfg.rec_only_steps == stop.step
            if reconstruction_only:
                logging.info("Steps %d to %d train Eq. 5 alone (rec_only_steps).", stop.step, end)
            elif switch:
                logging.info("Step %d: Eq. 7 from here, with a restarted optimizer.", stop.step)
            lr = cfg.lr if reconstruction_only or cfg.eq7_lr is None else cfg.eq7_lr
            begin_phase(self.model, reconstruction_only, restart=switch, lr=lr)
            stop.max_steps = end
            remaining = end - stop.step
            per_epoch = min(cfg.log_every, remaining)
            history = self.model.fit(
                self.dataset(stop.step),
                steps_per_epoch=per_epoch,
                epochs=math.ceil(remaining / per_epoch),
                callbacks=callbacks,
                verbose=cfg.verbose,
                shuffle=False,
            )
        step = stop.step
        self.checkpoint.save()  # At the end (a no-op if this step is saved).
        progress = [c for c in callbacks if isinstance(c, cb.ProgressLogger)]
        rates = progress[0].rates if progress else []
        rate = sum(rates) / len(rates) if rates else math.nan
        names = set(self.model.metrics_names)
        losses = {k: float(v[-1]) for k, v in history.history.items() if v and k in names}
        elapsed = time.monotonic() - t_start
        if stop.stopped_by:
            logging.info(
                "Stopped by %s at step %d/%d; checkpoint saved (%s). Rerun the same "
                "command to resume.",
                stop.stopped_by,
                step,
                cfg.steps,
                self.checkpoint.latest,
            )
        logging.info(
            "Done: step %d/%d, %d steps in %s (%.3g steps/s after the first), final loss %.5g.",
            step,
            cfg.steps,
            step - start_step,
            cb.format_duration(elapsed),
            rate,
            losses.get("loss", math.nan),
        )
        return TrainResult(
            step, start_step, losses, rate, stop.stopped_by, self.checkpoint.latest, elapsed
        )


def begin_phase(model, reconstruction_only: bool, restart: bool, lr: float | None = None) -> None:
    """Sets the objective of the next `fit`: Eq. 5 alone or Eq. 7 (`rec_only_steps`).

    The train step is retraced for it. `restart` gives Eq. 7 a fresh Adam with
    its warm-up (`optim.restart`), as the CPU runs that chose the curriculum had;
    `lr` (if set) is the rate its warm-up ramps to (`TrainConfig.eq7_lr`).
    """
    if hasattr(model, "reconstruction_only"):
        model.reconstruction_only = reconstruction_only
    if restart:
        optim.restart(model.optimizer)
    if lr is not None:
        optim.set_peak_lr(model.optimizer, lr)
    model.train_function = None


def _with_input_checks(dataset):
    """`tf_checks.check_pair_dataset` for a `tf.data.Dataset`; other inputs as they are."""
    if type(dataset).__module__.split(".")[0] != "tensorflow" or not hasattr(dataset, "map"):
        return dataset
    from exchange_st.saving import tf_checks

    return tf_checks.check_pair_dataset(dataset)


def train(
    config: TrainConfig, strategy=None, dataset_fn=None, start_time: float | None = None
) -> TrainResult:
    """Trains (or resumes) a model as configured, on the current Keras backend.

    Restores `config.model_dir/latest.weights.h5` (same architecture only),
    writes `config.json`, fits to `config.steps` with the callbacks of
    `Trainer.callbacks`, and saves every `checkpoint_every` steps, at the
    end, on SIGINT/SIGTERM and before `max_seconds` (then returns with
    `stopped_by` set).

    Args:
      config: `TrainConfig`.
      strategy: TensorFlow only: a `tf.distribute.Strategy`.
      dataset_fn: Optional input override (see `Trainer`).
      start_time: `time.monotonic()` from which `config.max_seconds`
        counts (e.g. the process start); default: now.

    Returns:
      `TrainResult`.

    Raises:
      FloatingPointError: A loss term or the weights became NaN/Inf; nothing
        of that step is saved.
      ValueError: Bad config, or `model_dir` holds a different architecture.
    """
    previous_policy = keras.config.dtype_policy()
    policy = "float32" if config.mixed_precision == "none" else config.mixed_precision
    keras.config.set_dtype_policy(policy)
    previous_distribution = None
    if keras.backend.backend() != "tensorflow":
        previous_distribution = keras.distribution.distribution()
        distribution = distribute.make_distribution()
        if distribution is not None:
            keras.distribution.set_distribution(distribution)
    try:
        start_time = time.monotonic() if start_time is None else start_time
        return Trainer(config, strategy, dataset_fn).run(start_time)
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if keras.backend.backend() != "tensorflow":
            keras.distribution.set_distribution(previous_distribution)
