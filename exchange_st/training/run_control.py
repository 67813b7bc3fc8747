"""The `fit` callbacks that control a training run: checkpoints, the non-finite guard, stopping.

`Checkpoint` writes and restores `model_dir/latest.weights.h5`; `NonFiniteGuard`
stops on a NaN or Inf loss; `StopControl` stops on `--max_seconds`, SIGINT or
SIGTERM, each after a save. Their step counting is `callbacks.StepCallback`'s.
"""

from __future__ import annotations

import math
import os
import signal
import time

import keras
import numpy as np
from absl import logging

from exchange_st.saving import serialization
from exchange_st.training import callbacks as cb


# What `fit` and `train` still do after the stop (callbacks' ends, final
# logs): a run stopped by max_seconds measured up to 0.05 s of it past the
# limit on a 2-core CPU without this allowance.
_TEARDOWN_SECONDS = 1.0


class Checkpoint(cb.StepCallback):
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


class NonFiniteGuard(cb.StepCallback):
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


class StopControl(cb.StepCallback):
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
