"""The `fit` callbacks of train_lib that Keras lacks (logging; `run_control` has the rest); any backend.

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
import time

import keras
import numpy as np
from absl import logging

from exchange_st.data import image_io

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


def tensorflow_or_none():
    """The `tensorflow` module if it can be imported, else None (e.g. a JAX-only machine)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


class StepCallback(keras.callbacks.Callback):
    """Counts global steps: `start_step` + batches of this `fit`."""

    def __init__(self, start_step=0):
        super().__init__()
        self.step = start_step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


class ProgressLogger(StepCallback):
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


class ScalarSummaries(StepCallback):
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


class ImageGrid(StepCallback):
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
