"""Finding and restoring the training checkpoints that train_lib writes."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

# The resolved training config, written by train_lib next to the checkpoints.
CONFIG_FILE = "config.json"


def resolve_checkpoint(path_or_dir, what="model"):
    """Finds the checkpoint a training `model_dir` or a checkpoint prefix names.

    Args:
      path_or_dir: a `model_dir` (its latest checkpoint is used) or a
        checkpoint prefix such as `model_dir/ckpt-1000`.
      what: what the checkpoint is of (e.g. `"adain"`), for error messages.

    Returns:
      `(checkpoint_prefix, model_dir)`; `model_dir` is the prefix's directory
      when a prefix is given.

    Raises:
      FileNotFoundError: no checkpoint in the directory, or no such prefix.
    """
    path = os.fspath(path_or_dir)
    if tf.io.gfile.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(f"No {what} checkpoint in directory {path}.")
        return prefix, path
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(
            f"{what} checkpoint not found: {path} is neither a directory nor a checkpoint "
            f"prefix (no {path}.index)."
        )
    return path, os.path.dirname(path)


def read_run_config(model_dir):
    """The `config.json` train_lib wrote into `model_dir`, or `{}` if there is none."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def checkpoint_dependencies(root):
    """ids of every object (`root` included) a `tf.train.Checkpoint` of `root` reaches."""
    return {id(obj) for obj in tf.train.TrackableView(root).descendants()}


def assert_checkpointable(obj):
    """Raises if a checkpoint of `obj` would miss any of `obj.variables`.

    Keras 3 leaves layers held only in plain Python lists out of the object
    graph `tf.train.Checkpoint` walks: their variables would silently not be
    saved, and stay freshly initialised after every restore.

    Args:
      obj: a Keras model, layer or optimizer.

    Raises:
      AssertionError: some variables are unreachable.
    """
    reached = checkpoint_dependencies(obj)
    missing = [v.path for v in obj.variables if id(v) not in reached]
    if missing:
        raise AssertionError(
            f"tf.train.Checkpoint would not save or restore {len(missing)} variables of "
            f"{type(obj).__name__} {getattr(obj, 'name', '')!r}, e.g. {missing[:5]}. Layers "
            "kept in a list must also be attributes (see layers.track_layer_list)."
        )


def restore(model, prefix):
    """Restores the model of a training checkpoint into `model`, built here if needed.

    Training checkpoints hold `tf.train.Checkpoint(model=..., optimizer=...,
    step=...)`; only the model is restored. It holds every model variable,
    the fixed VGG encoder and its feature scales included, so `model` can be
    built with `vgg_weights=None` and needs no VGG file.

    Args:
      model: a Keras model whose architecture matches the checkpoint's.
      prefix: a checkpoint prefix (see `resolve_checkpoint`).

    Returns:
      `model`, restored.

    Raises:
      AssertionError: some model variable is unreachable by a checkpoint, or
        the checkpoint lacks values for some (an architecture with layers the
        trained one lacks, or a checkpoint written before every layer was
        tracked).
      ValueError: a variable's shape differs from the checkpoint's (e.g.
        other layer widths).
    """
    if not model.built:
        model.build()
    assert_checkpointable(model)
    # The optimizer slots and the step are not needed: expect_partial.
    status = tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
    # Every model variable must get a value, or a layer would silently stay random.
    status.assert_existing_objects_matched()
    logging.info("Restored %s.", prefix)
    return model
