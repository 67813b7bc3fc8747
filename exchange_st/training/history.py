"""A model's training history: one phase per `train` call, kept in `model_dir/history.json`.

A model trained session after session, on a CPU and now and then on a GPU,
is only understood with its history: which steps ran at which crop size and
precision, on which machine, for how long. Each `train` call appends a
phase and keeps it current as it goes (a killed run loses at most one log
interval of it); a release carries the history in its manifest, and a run
continued from that release (`TrainConfig.init_from`) starts its own
history with it. Any backend.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time

import keras

from exchange_st.training import callbacks as cb

HISTORY_FILE = "history.json"
# What a phase records besides its steps and time; phases that agree on all of
# these and follow each other are one in `summarize`.
SETTINGS = ("crop_size", "resize_short_side", "batch_size", "precision", "backend", "machine")


def read(path) -> list[dict]:
    """The phases in `path`: a model_dir, or a history.json file; [] if there is none."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, HISTORY_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        phases = json.load(f)
    if not isinstance(phases, list):
        raise ValueError(f"{path} is not a training history (a JSON list of phases)")
    return phases


def machine() -> str:
    """What trains: the accelerator's kind, else the CPU's model and core count."""
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.device_kind} ({device.platform}, JAX)"
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"{details.get('device_name', 'GPU')} (TensorFlow)"
    return f"{_cpu_model()}, {os.cpu_count()} cores"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def new_phase(config, start_step: int, init_from: str | None = None) -> dict:
    """The phase a `train` call of `config` (a `TrainConfig`) adds, before its first step."""
    phase = {
        "start_step": int(start_step),
        "end_step": int(start_step),
        "hours": 0.0,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "crop_size": config.data.crop_size,
        "resize_short_side": config.data.resize_short_side,
        "batch_size": config.data.batch_size,
        "precision": "float32" if config.mixed_precision == "none" else config.mixed_precision,
        "backend": keras.backend.backend(),
        "machine": machine(),
    }
    if init_from:
        phase["init_from"] = init_from
    return phase


def until(phases, step) -> list[dict]:
    """The phases up to training step `step` (a save may be older than the history's last line).

    A phase that runs past `step` ends there, its hours scaled by the share it kept.
    """
    kept = []
    for phase in phases:
        if phase.get("start_step", 0) >= step and kept:
            break
        phase = dict(phase)
        end, start = phase.get("end_step", step), phase.get("start_step", 0)
        if end > step:
            if phase.get("hours") is not None and end > start:
                phase["hours"] *= (step - start) / (end - start)
            phase["end_step"] = step
        kept.append(phase)
    return kept


def summarize(phases) -> list[dict]:
    """Consecutive phases with the same `SETTINGS` merged: steps, hours, settings."""
    merged = []
    for phase in phases:
        last = merged[-1] if merged else None
        same = last is not None and all(last.get(k) == phase.get(k) for k in SETTINGS)
        if same and last["end_step"] == phase["start_step"]:
            last["end_step"] = phase["end_step"]
            last["hours"] += phase.get("hours", 0.0)
        else:
            merged.append(
                {
                    "start_step": phase["start_step"],
                    "end_step": phase["end_step"],
                    "hours": phase.get("hours", 0.0),
                    **{k: phase.get(k) for k in SETTINGS},
                }
            )
    return merged


def format_summary(phases) -> str:
    """One line per merged phase: steps, crop size, precision, machine, hours."""
    lines = []
    for p in summarize(phases):
        lines.append(
            f"steps {p['start_step']}-{p['end_step']}: {p['crop_size']} px crops (short side "
            f"{p['resize_short_side']}), batch {p['batch_size']}, {p['precision']}, "
            f"{p['backend']} on {p['machine']}, {p['hours']:.2f} h"
        )
    return "\n".join(lines)


class RunHistory(cb.StepCallback):
    """Keeps the last phase of `model_dir/history.json` current: its end step and hours.

    Args:
      model_dir: the run's directory.
      phases: the history up to now, the running phase last (`new_phase`).
      start_step: the restored step.
    """

    def __init__(self, model_dir, phases, start_step=0):
        super().__init__(start_step)
        self.path = os.path.join(model_dir, HISTORY_FILE)
        self.phases = list(phases)
        self._t0 = time.monotonic()
        self._hours0 = self.phases[-1]["hours"]
        self.write()

    def write(self):
        phase = self.phases[-1]
        phase["end_step"] = int(self.step)
        phase["hours"] = self._hours0 + (time.monotonic() - self._t0) / 3600.0
        cb.write_json(self.path, self.phases)

    def on_epoch_end(self, epoch, logs=None):
        self.write()

    def on_train_end(self, logs=None):
        self.write()
