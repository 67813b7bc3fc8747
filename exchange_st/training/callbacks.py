"""The `fit` callbacks of train_lib that Keras lacks; any backend, TensorFlow optional.

Each counts the global step itself: `start_step` (restored by the Trainer)
plus the batches of this `fit`. On JAX, `Callback.model` copies the
training state back into the model's variables, so per-step code uses
`self._model` and only saving and rendering touch `self.model`.

`fit`'s own progress bar is available with `TrainConfig.verbose`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time

import keras
import numpy as np
from absl import logging

from exchange_st.data import image_io
from exchange_st.saving import serialization

# Order of the image-grid columns: inputs, stylizations, reconstructions.
GRID_COLUMNS = ("content", "style", "s2c", "c2s", "c2c", "s2s")
GRID_TITLES = {
    "content": "I_c",
    "style": "I_s",
    "s2c": "I_s->c",
    "c2s": "I_c->s",
    "c2c": "I_c->c",
    "s2s": "I_s->s",
}
# The loss terms shown on the console progress line (all go to the CSV log).
_CONSOLE_TERMS = ("content", "style", "rec", "com")

# What `fit` and `train` still do after the stop (callbacks' ends, final
# logs): a run stopped by max_seconds measured up to 0.05 s of it past the
# limit on a 2-core CPU without this allowance.
_TEARDOWN_SECONDS = 1.0


def tensorflow_or_none():
    """The `tensorflow` module if it can be imported, else None (e.g. a JAX-only machine)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


class _StepCallback(keras.callbacks.Callback):
    """Counts global steps: `start_step` + batches of this `fit`."""

    def __init__(self, start_step=0):
        super().__init__()
        self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


class Checkpoint(_StepCallback):
    """Writes `model_dir/latest.weights.h5` (weights, optimizer state, step) and its config.

    Saves at multiples of `every_steps`, after `every_seconds` since the
    last save, and when `save` is called (end, SIGTERM, `--max_seconds`).
    Each save replaces the file atomically (`serialization.save_weights`) and
    refuses non-finite weights, so the file is always the last good state.
    `keep` > 1 also keeps hard links `ckpt-<step>.weights.h5` to the last
    `keep` saves (the newest is `latest` itself; no extra disk for it).

    Keras' `BackupAndRestore` restores the same file contents (weights and
    optimizer, `iterations` included, on TensorFlow and JAX) but resumes at
    the start of the saved *epoch*, writes in place and has no time-based
    saves; see docs/design.md, "Training".
    """

    def __init__(self, model_dir, every_steps, every_seconds=None, keep=1, chief=True):
        super().__init__()
        self.path = os.path.join(model_dir, serialization.WEIGHTS_FILE)
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self.keep, self.chief = keep, chief
        self.saved_step = None
        self.save_seconds = 0.0
        self._last_save = time.monotonic()

    def restore(self, model) -> int:
        """Loads the saved state into a compiled `model`; returns its step (0 if none)."""
        if not os.path.isfile(self.path):
            return 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.path)
        step = serialization.saved_step(self.path)
        if step is None:  # A file saved without its step: the optimizer's count.
            step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        self.step = self.saved_step = step
        return step

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        due = self.step % self.every_steps == 0
        if self.every_seconds and time.monotonic() - self._last_save >= self.every_seconds:
            due = True
        if due:
            self.save()

    def save(self):
        """Saves the current state unless this step is saved already; returns the path."""
        if self.saved_step == self.step or not self.chief:
            return self.path
        start = time.monotonic()
        model = self.model  # On JAX: the state synced into the variables.
        bad = [v.path for v in model.trainable_variables if not _all_finite(v)]
        if bad:
            raise FloatingPointError(
                f"Non-finite weights at step {self.step} ({len(bad)} variables, e.g. "
                f"{bad[:3]}); not saving. The last good checkpoint is {self.latest}."
            )
        serialization.save_weights(model, self.path, step=self.step)
        if self.keep > 1:
            self._link_snapshot()
        self.saved_step = self.step
        self._last_save = time.monotonic()
        self.save_seconds = self._last_save - start
        return self.path

    @property
    def latest(self):
        """The saved file, or None before the first save."""
        return self.path if os.path.isfile(self.path) else None

    def _link_snapshot(self):
        directory = os.path.dirname(self.path)
        snapshot = os.path.join(directory, f"ckpt-{self.step}.weights.h5")
        for src, dst in (
            (self.path, snapshot),
            (serialization.config_path(self.path), serialization.config_path(snapshot)),
        ):
            if os.path.exists(dst):
                os.remove(dst)
            try:
                os.link(src, dst)
            except OSError:  # A file system without hard links.
                with open(src, "rb") as fin, open(dst, "wb") as fout:
                    fout.write(fin.read())
        steps = sorted(
            int(name[5 : -len(".weights.h5")])
            for name in os.listdir(directory)
            if name.startswith("ckpt-") and name.endswith(".weights.h5")
        )
        for old in steps[: -self.keep]:
            for suffix in (".weights.h5", ".config.json"):
                stale = os.path.join(directory, f"ckpt-{old}{suffix}")
                if os.path.exists(stale):
                    os.remove(stale)


def _all_finite(variable):
    return bool(keras.ops.convert_to_numpy(keras.ops.all(keras.ops.isfinite(variable))))


class NonFiniteGuard(_StepCallback):
    """Raises `FloatingPointError` at the first NaN/Inf loss term, before any save of that step.

    Keras' `TerminateOnNaN` stops after the batch (the weights already
    updated), looks at `loss` only and would let the end-of-run save write
    them. Put this callback before `Checkpoint`.
    """

    def __init__(self, checkpoint: Checkpoint, start_step=0):
        super().__init__(start_step)
        self.checkpoint = checkpoint

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        values = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            terms = ", ".join(f"{k}={values[k]}" for k in bad)
            raise FloatingPointError(
                f"Non-finite loss at step {self.step}: {terms}. Stopping without saving; "
                f"the last good checkpoint is {self.checkpoint.latest} (step "
                f"{self.checkpoint.saved_step}). Lower --lr or check the inputs."
            )


class StopControl(_StepCallback):
    """Stops `fit` cleanly at `max_steps`, on SIGINT/SIGTERM, or before `max_seconds` run out.

    On a signal or the time limit it saves the checkpoint and sets
    `model.stop_training`; `stopped_by` names the reason. The time limit
    counts from `start_time` (the run's start) and stops as soon as one more
    step plus the save would not fit: a time-boxed run ends inside its
    limit with its weights written.

    Signal handlers are installed in `on_train_begin` (main thread only)
    and restored at the end.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, checkpoint, max_steps, start_step=0, max_seconds=None, start_time=None):
        super().__init__(start_step)
        self.checkpoint, self.max_steps, self.max_seconds = checkpoint, max_steps, max_seconds
        self.start_time = time.monotonic() if start_time is None else start_time
        self.stopped_by = None
        self._signum = None
        self._previous = {}
        self._last = None
        self._step_seconds = 0.0

    def on_train_begin(self, logs=None):
        try:
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        except ValueError:
            logging.warning("Not in the main thread: SIGINT/SIGTERM will not save a checkpoint.")
        self._last = time.monotonic()

    def on_train_end(self, logs=None):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        if self._signum is None:
            logging.warning(
                "Received %s: saving a checkpoint after the current step.",
                signal.Signals(signum).name,
            )
        self._signum = signum

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        now = time.monotonic()
        # The slowest recent step (the first one compiles) keeps the margin safe.
        self._step_seconds = max(now - self._last, 0.9 * self._step_seconds)
        self._last = now
        if self._signum is not None:
            self.stopped_by = signal.Signals(self._signum).name
        elif self.max_seconds is not None:
            margin = (
                self._step_seconds
                + max(self.checkpoint.save_seconds, self._step_seconds)
                + _TEARDOWN_SECONDS
            )
            if now - self.start_time + margin > self.max_seconds:
                self.stopped_by = "max_seconds"
        if self.stopped_by:
            self.checkpoint.save()
        if self.stopped_by or self.step >= self.max_steps:
            self._model.stop_training = True


class ProgressLogger(_StepCallback):
    """One console line per `fit` epoch (= `log_every` steps): step, losses, steps/s, ETA.

    The losses are Keras' metric values: means over the steps since the
    previous line. It also adds `step`, `learning_rate` and `steps_per_sec`
    to the epoch logs, for the `CSVLog` after it. With `max_seconds` the line
    also says which step the run will reach when that limit stops it, at the
    current rate (a time-boxed run is sized by it, not by `total_steps`).
    """

    def __init__(self, total_steps, start_step=0, max_seconds=None, start_time=None):
        super().__init__(start_step)
        self.total_steps = total_steps
        self.rates = []
        self._t0 = self._step0 = None
        self.deadline = None
        if max_seconds is not None:
            self.deadline = (time.monotonic() if start_time is None else start_time) + max_seconds

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self._t0 is None:  # After the first step, which compiles.
            self._t0, self._step0 = time.monotonic(), self.step

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        now = time.monotonic()
        rate = (self.step - self._step0) / (now - self._t0) if self.step > self._step0 else math.nan
        self._t0, self._step0 = now, self.step
        if math.isfinite(rate):
            self.rates.append(rate)
        logs["step"] = self.step
        logs["learning_rate"] = learning_rate(self.model.optimizer)
        terms = "  ".join(f"{k} {float(logs[k]):.4g}" for k in _CONSOLE_TERMS if k in logs)
        eta = (self.total_steps - self.step) / rate if rate > 0 else math.nan
        projection = ""
        if self.deadline is not None and rate > 0:
            reach = self.step + rate * max(self.deadline - now, 0.0)
            projection = f"  ~step {min(int(reach), self.total_steps)} at max_seconds"
        logging.info(
            "step %d/%d  loss %.5g  %s  %.3g steps/s  ETA %s%s",
            self.step,
            self.total_steps,
            float(logs.get("loss", math.nan)),
            terms,
            rate,
            format_duration(eta),
            projection,
        )
        logs["steps_per_sec"] = rate


class CSVLog(keras.callbacks.Callback):
    """Appends one row per `fit` epoch to a CSV file: `step`, then every logged value.

    Like Keras' `CSVLogger`, but keyed by the global step (which survives a
    resume; fit's epoch index does not) and without its empty `val_*`
    columns. The columns are fixed by the file's header (or the first row).
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        row = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        row["step"] = int(row.get("step", epoch + 1))
        header = None
        if os.path.isfile(self.path) and os.path.getsize(self.path):
            with open(self.path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            if header is None:
                header = ["step"] + sorted(k for k in row if k != "step")
                csv.writer(f).writerow(header)
            csv.writer(f).writerow([row.get(k, "") for k in header])


def learning_rate(optimizer) -> float:
    """The optimizer's current learning rate (its schedule at the current step)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class ScalarSummaries(_StepCallback):
    """TensorBoard scalars `train/<term>` every `every_steps` steps; needs TensorFlow.

    The values are fit's logs at that step: means since the last progress
    line (with `log_every == summary_every`, over exactly that interval).
    Also `train/learning_rate` and `train/steps_per_sec`.
    """

    def __init__(self, tf, logdir, every_steps, start_step=0):
        super().__init__(start_step)
        self.tf, self.every_steps = tf, every_steps
        self.writer = tf.summary.create_file_writer(logdir)
        self._t = self._s = None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        now = time.monotonic()
        if self._t is None:
            self._t, self._s = now, self.step
        if self.step % self.every_steps:
            return
        with self.writer.as_default(step=self.step):
            for name, value in (logs or {}).items():
                if np.ndim(value) == 0:
                    write_scalar(self.tf, f"train/{name}", float(value), self.step)
            write_scalar(
                self.tf, "train/learning_rate", learning_rate(self.model.optimizer), self.step
            )
            if self.step > self._s:
                rate = (self.step - self._s) / (now - self._t)
                write_scalar(self.tf, "train/steps_per_sec", rate, self.step)
        self._t, self._s = now, self.step

    def on_train_end(self, logs=None):
        self.writer.flush()


class ImageGrid(_StepCallback):
    """Every `every_steps` steps: `model_dir/images/step-<N>.png` of a fixed sample.

    Rows are the sample's examples, columns content | style | s2c | c2s |
    c2c | s2s (those the model outputs), clipped to [0, 1]. With TensorFlow
    the grid also goes to TensorBoard (`train/images`).
    """

    def __init__(self, sample, directory, every_steps, start_step=0, tf=None, logdir=None):
        super().__init__(start_step)
        self.content, self.style = (np.asarray(sample[k], np.float32) for k in ("content", "style"))
        self.directory, self.every_steps, self.tf = directory, every_steps, tf
        self.writer = tf.summary.create_file_writer(logdir) if tf is not None else None

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step % self.every_steps == 0:
            self.render()

    def render(self):
        # fit's compiled predict step (jitted on JAX, a tf.function on TF).
        outputs = self.model.predict_on_batch({"content": self.content, "style": self.style})
        columns = {"content": self.content, "style": self.style}
        for k in GRID_COLUMNS[2:]:
            if k in outputs:
                columns[k] = keras.ops.convert_to_numpy(outputs[k])
        keys = [k for k in GRID_COLUMNS if k in columns]
        grid = image_grid([[columns[k][i] for k in keys] for i in range(len(self.content))])
        path = os.path.join(self.directory, f"step-{self.step:07d}.png")
        image_io.save_image(path, grid)
        if self.writer is not None:
            description = "Rows: examples. Columns: " + ", ".join(GRID_TITLES[k] for k in keys)
            with self.writer.as_default(step=self.step):
                write_image(self.tf, "train/images", grid, self.step, description)
            self.writer.flush()
        return path


def image_grid(rows) -> np.ndarray:
    """Tiles `[H, W, 3]` images (clipped to [0, 1]) into one `[H', W', 3]` figure."""
    rows = [
        [np.clip(np.nan_to_num(np.asarray(c, np.float32)), 0.0, 1.0) for c in row] for row in rows
    ]
    return image_io.make_grid(rows, pad=2)


# TensorBoard is not a dependency: summaries are written with the raw
# `tf.summary.write` and the plugin metadata TensorBoard's own ops would add.
def write_scalar(tf, name: str, value: float, step: int):
    """Scalar summary readable by TensorBoard's scalars dashboard."""
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)


def write_image(tf, name: str, image: np.ndarray, step: int, description: str = ""):
    """PNG image summary `[H, W, 3]` in [0, 1] for TensorBoard's images dashboard."""
    from tensorflow.core.framework import summary_pb2

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


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def write_json(path, value):
    """Writes `value` as JSON, replacing `path` atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
