"""The inputs of `bench.train_step`: one fixed batch, or the configured pipeline, timed alone too."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import keras
from absl import logging

from bench import common
from exchange_st.data import pydata, sources

if TYPE_CHECKING:
    from bench.train_variants import TrainBenchConfig


class FixedBatch(keras.utils.PyDataset):
    """The same batch forever: the training step without the cost of making inputs."""

    def __init__(self, batch: dict):
        super().__init__()
        self.batch = batch

    @property
    def num_batches(self):
        return None

    def __getitem__(self, index):
        return self.batch


def _uses_tf_data(pipeline: str) -> bool:
    return pipeline == "tf" or (pipeline == "auto" and common.backend() == "tensorflow")


def fixed_dataset(batch: dict, pipeline: str):
    """`batch` repeated, in the kind of input the configured pipeline gives `fit`.

    A tf.data input gets the in-graph value checks train.py adds to it.
    """
    if _uses_tf_data(pipeline):
        import tensorflow as tf

        from exchange_st.saving import tf_checks

        return tf_checks.check_pair_dataset(tf.data.Dataset.from_tensors(batch).repeat())
    return FixedBatch(batch)


def data_config(cfg: TrainBenchConfig, crop: int, batch: int) -> sources.DataConfig:
    content = cfg.content_dir or cfg.style_dir or "builtin"
    style = cfg.style_dir or cfg.content_dir or "builtin"
    return sources.DataConfig(
        content,
        style,
        resize_short_side=max(cfg.resize_short_side, crop),
        crop_size=crop,
        batch_size=batch,
        seed=cfg.seed,
        pipeline=cfg.data_pipeline,
        workers=cfg.data_workers,
        use_multiprocessing=cfg.data_multiprocessing,
    )


def time_tf_data(cfg: TrainBenchConfig, data_cfg: sources.DataConfig) -> dict:
    """Batches/s of `data.make_pair_dataset` iterated alone."""
    from exchange_st.data import pipeline as data_lib  # TensorFlow.

    t_build = time.perf_counter()
    iterator = iter(data_lib.make_pair_dataset(data_cfg))
    for _ in range(cfg.pipeline_warmup):
        next(iterator)
    t0 = time.perf_counter()
    for _ in range(cfg.pipeline_batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - t0
    crop = data_cfg.crop_size
    assert tuple(batch["content"].shape) == (data_cfg.batch_size, crop, crop, 3)
    return {"batches": cfg.pipeline_batches, "seconds": elapsed, "startup_s": t0 - t_build}


def time_pydataset(cfg: TrainBenchConfig, data_cfg: sources.DataConfig) -> dict:
    """Batches/s of `pydata.PairDataset` made in one thread (fit's `workers` run several)."""
    t_build = time.perf_counter()
    dataset = pydata.PairDataset(data_cfg)
    for i in range(cfg.pipeline_warmup):
        dataset[i]
    t0 = time.perf_counter()
    for i in range(cfg.pipeline_batches):
        batch = dataset[cfg.pipeline_warmup + i]
    elapsed = time.perf_counter() - t0
    crop = data_cfg.crop_size
    assert batch["content"].shape == (data_cfg.batch_size, crop, crop, 3)
    return {"batches": cfg.pipeline_batches, "seconds": elapsed, "startup_s": t0 - t_build}


def time_pipelines(cfg: TrainBenchConfig, crop: int, batch: int) -> dict:
    """Each input path of this backend, alone: tf.data (TensorFlow) and the PyDataset."""
    data_cfg = data_config(cfg, crop, batch)
    timers = {"pydataset": time_pydataset}
    if common.backend() == "tensorflow":
        timers = {"tf.data": time_tf_data, **timers}
    results = {}
    for name, timer in timers.items():
        logging.info("Timing the %s pipeline alone (%s, %s).", name, data_cfg.content_source, crop)
        result = timer(cfg, data_cfg)
        result.update(
            content_source=data_cfg.content_source,
            style_source=data_cfg.style_source,
            steps_per_s=result["batches"] / result["seconds"],
        )
        results[name] = result
    return results
