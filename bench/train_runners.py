"""The runners of `bench.train_step`: train.py's Trainer per variant, its `fit` timed round by round.

Each runner's `run()` trains `steps` steps and returns (wall s, CPU s) per step
after the first; `interleave` takes the runners in turns, so a drifting load
hits them alike.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING

import keras
from absl import logging

from bench import common
from bench.train_inputs import data_config, fixed_dataset
from exchange_st.training import train_config, train_lib

if TYPE_CHECKING:
    from bench.train_variants import TrainBenchConfig, Variant

# Steps that never come: the benchmark's Trainer logs, saves and summarises nothing.
_NEVER = 10**9


class _Clock(keras.callbacks.Callback):
    """Times fit's steps after the first: from the end of step 1 to the end of training.

    Both ends wait for the device, so dispatch running ahead cannot hide
    work. Per-step hooks use `self._model`: on JAX `self.model` would write
    the training state back into the variables (a copy per step).
    """

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            common.materialize(logs)
            self.first = time.perf_counter(), time.process_time()

    def on_train_end(self, logs=None):
        # fit has written the last step's state back into the variables.
        common.materialize(self._model.optimizer.iterations.value)
        self.end = time.perf_counter(), time.process_time()


class WaitMeter:
    """Records how long each JAX training step blocks on `next(iterator)`, i.e. waits for data.

    Keras' JAX loop fetches the batch, then dispatches the compiled step;
    the model's `train_function` is wrapped to time the fetch alone.
    """

    def __init__(self, model):
        if model.steps_per_execution != 1:
            # Each call then fetches several batches; only the first would be timed.
            raise ValueError("WaitMeter needs steps_per_execution=1 (train.py's)")
        self.waits: list[float] = []
        model.make_train_function()
        inner = model.train_function

        def timed(state, iterator):
            t0 = time.perf_counter()
            data = next(iterator)
            self.waits.append(time.perf_counter() - t0)
            return inner(state, iter((data,)))

        model.train_function = timed


class FitRunner:
    """`model.fit` of one Trainer on one input for `steps` steps per call.

    Args:
      trainer: the `train_lib.Trainer`.
      dataset: what `fit` reads.
      steps: steps per call.
      callbacks: `"train"` (train.py's, `Trainer.callbacks`) or `"none"`.
      wait_meter: the trainer's `WaitMeter` (JAX), or None.
    """

    def __init__(self, trainer, dataset, steps: int, callbacks: str, wait_meter=None):
        self.trainer, self.dataset, self.steps = trainer, dataset, steps
        self.callback_kind = callbacks
        self.callbacks = trainer.callbacks(0, time.monotonic()) if callbacks == "train" else []
        self.wait_meter = wait_meter
        self.round_waits: list[float] = []

    def run(self) -> tuple[float, float]:
        clock = _Clock()
        first_wait = len(self.wait_meter.waits) if self.wait_meter else 0
        self.trainer.model.fit(
            self.dataset,
            steps_per_epoch=self.steps,
            epochs=1,
            callbacks=[*self.callbacks, clock],
            verbose=0,
            shuffle=False,
        )
        if self.wait_meter:
            # The first fetch of a call starts the iterator (and its workers).
            waits = self.wait_meter.waits[first_wait + 1 :]
            self.round_waits.append(sum(waits) / len(waits))
        n = self.steps - 1
        return (clock.end[0] - clock.first[0]) / n, (clock.end[1] - clock.first[1]) / n


def build_trainer(cfg: TrainBenchConfig, v: Variant, workdir: str) -> train_lib.Trainer:
    """The Trainer of train.py for a variant (its input is chosen by `variant_input`)."""
    data_cfg = data_config(cfg, v.crop, v.batch)
    train_cfg = train_config.TrainConfig(
        data=data_cfg,
        model_dir=os.path.join(workdir, v.name.replace(" ", "_")),
        model=v.model,
        vgg_weights=cfg.vgg_weights,
        seed=cfg.seed,
        mixed_precision=v.precision,
        jit_compile=v.jit,
        steps=_NEVER,
        log_every=_NEVER,
        summary_every=_NEVER,
        image_every=_NEVER,
        checkpoint_every=_NEVER,
    )
    train_cfg = train_config.with_options(train_cfg, cfg.options)
    # As train_lib.train: the policy is read when the model is built.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if v.precision == "none" else v.precision)
    try:
        trainer = train_lib.Trainer(train_cfg)
    finally:
        keras.config.set_dtype_policy(previous)
    trainer.write_config()  # Creates model_dir, where the callbacks write (as Trainer.run).
    if common.backend() == "jax" and not v.jit:
        # The Trainer always compiles JAX steps; "off" measures what that buys.
        trainer.model.jit_compile = False
    return trainer


def variant_input(cfg: TrainBenchConfig, v: Variant, trainer):
    """`fixed`: one random batch repeated; `pipeline`: the Trainer's configured input."""
    if v.input == "pipeline":
        return trainer.dataset()
    shape = [v.batch, v.crop, v.crop, 3]
    batch = {
        "content": common.random_array(shape, cfg.seed + 1),
        "style": common.random_array(shape, cfg.seed + 2),
    }
    return fixed_dataset(batch, cfg.data_pipeline)


def build_runners(cfg: TrainBenchConfig, all_variants, workdir: str, make_runners):
    """One Trainer per variant but its input (inputs share the model and its compiled step).

    `make_runners(variant, trainer, wait_meter) -> {name: runner}`.
    """
    trainers, runners = {}, {}
    for v in all_variants:
        key = v.trainer_key
        if key not in trainers:
            logging.info("Building %s.", key.name)
            trainer = build_trainer(cfg, v, workdir)
            meter = WaitMeter(trainer.model) if common.backend() == "jax" else None
            trainers[key] = trainer, meter
        runners.update(make_runners(v, *trainers[key]))
    return runners, {k: t for k, (t, _) in trainers.items()}


def summarize_times(times: list[float]) -> dict:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
    }


def interleave(runners: dict, rounds: int, on_round=None) -> dict:
    """One untimed round (compiles), then `rounds` rounds in which every runner runs once.

    Returns `{name: {"wall": [...], "cpu": [...], "first_call_s": s}}`: per-step
    seconds of each timed round, and the whole first call (compilation included).
    """
    results = {name: {"wall": [], "cpu": []} for name in runners}
    for r in range(rounds + 1):
        for name, runner in runners.items():
            logging.info("Round %d/%d: %s", r, rounds, name)
            t0 = time.perf_counter()
            wall, cpu = runner.run()
            if r:
                results[name]["wall"].append(wall)
                results[name]["cpu"].append(cpu)
            else:
                results[name]["first_call_s"] = time.perf_counter() - t0
        if on_round is not None:
            on_round(results, r)
    return results
