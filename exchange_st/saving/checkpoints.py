"""Checkpoints of the former TensorFlow training loop, untrained models, and the warnings about them.

Every model source is loaded through `loader.load`; this module reads the
`tf.train.Checkpoint` files `ckpt-N.*` (next to the run's `config.json`;
TensorFlow is imported only for those) and builds untrained models.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from absl import logging

from exchange_st.nn import vgg as vgg_lib
from exchange_st.saving.serialization import (
    CONFIG_FILE,
    FAMILIES,
    WEIGHTS_FILE,
    assert_checkpointable,
    constructor_keys,
    read_run_config,
)


def load_tf_checkpoint(path, fallback_config=None, what="model", expect=None, dtype=None):
    """A model from a `tf.train.Checkpoint` of the former TensorFlow training loop.

    Args:
      path: a checkpoint prefix (`model_dir/ckpt-1000`) or its folder (the
        latest checkpoint there), next to the run's `config.json`.
      fallback_config: constructor kwargs when the folder lacks `config.json`;
        None: the paper's defaults.
      what: what the checkpoint is of, for error messages.
      expect: the model class wanted; the folder's config names the family.
      dtype: Keras dtype policy of the rebuilt model.
    """
    prefix, model_dir = resolve_checkpoint(path, what)
    config = read_run_config(model_dir)
    if isinstance(config.get("model"), dict):
        config = config["model"]
    families = FAMILIES
    family = config.get("model", "efanet")
    if expect is not None:
        wanted = {c: name for name, c in families.items()}[expect]
        if config and family != wanted:
            raise ValueError(
                f"{os.path.join(model_dir, CONFIG_FILE)} describes a {family!r} model, not {wanted}"
            )
        family = wanted
    if not config:
        config = dict(fallback_config or {})
        logging.warning(
            "No %s in %s; using model hyperparameters %s.",
            CONFIG_FILE,
            model_dir,
            config or "(defaults)",
        )
    cls = families[family]
    keys = constructor_keys(cls)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in keys}
    if dtype is not None:
        kwargs["dtype"] = dtype
    return restore(cls(vgg_weights=None, **kwargs), prefix)


def run_model_kwargs(model_dir, family="efanet"):
    """Model constructor kwargs from `model_dir/config.json`, or None if absent.

    Accepts the training `TrainConfig` JSON (flat, with training settings
    mixed in) or a dict nested under a `"model"` key; keys that are not
    arguments of the family's class are ignored.

    Raises:
      ValueError: the config describes another model family.
    """
    config = read_run_config(model_dir)
    if not config:
        return None
    if isinstance(config.get("model"), dict):
        config = config["model"]
    elif config.get("model", "efanet") != family:
        raise ValueError(
            f"{os.path.join(model_dir, CONFIG_FILE)} describes a {config['model']!r} "
            f"model, not {family!r}."
        )
    keys = constructor_keys(FAMILIES[family])
    return {k: v for k, v in config.items() if k in keys}


def warn_if_random_vgg(model, what):
    """Warns when `model` was trained against a random VGG-19 (no `--vgg_weights`, smoke runs).

    Its losses measured nothing, so its outputs are no style transfer; the
    frozen feature scales it carries say which VGG it had. Returns whether
    it warned.
    """
    encoder = getattr(model, "encoder", None)
    if encoder is None or not np.allclose(encoder.feature_scales, vgg_lib.RANDOM_FEATURE_SCALES):
        return False
    logging.warning(
        "%s was trained with a RANDOM VGG-19 (a smoke run, no --vgg_weights): its losses "
        "measured nothing, so its outputs are not a style transfer.",
        what,
    )
    return True


def warn_untrained(what):
    """The one warning every tool logs before it runs a model with random weights."""
    logging.warning(
        "%s has RANDOM (untrained) weights (random_init): its outputs only show that the "
        "pipeline runs (demos and tests).",
        what,
    )


def untrained_model(family="efanet", vgg_weights=None, model_config=None, seed=None):
    """A built model of `family` with random weights (demos and tests), after the warning.

    Args:
      family: `"efanet"` or `"adain"`.
      vgg_weights: VGG weights (`"imagenet"`, an h5 path, None for random).
      model_config: constructor kwargs.
      seed: if given, `keras.utils.set_random_seed(seed)` first.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    warn_untrained(family)
    model = FAMILIES[family](vgg_weights=vgg_weights, **(model_config or {}))
    model.build()
    return model


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
    import tensorflow as tf  # Legacy TF checkpoints only.

    path = os.fspath(path_or_dir)
    if tf.io.gfile.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(
                f"No {what} checkpoint in directory {path} (neither {WEIGHTS_FILE} nor a "
                "TF checkpoint)."
            )
        return prefix, path
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(
            f"{what} checkpoint not found: {path} is neither a directory nor a checkpoint "
            f"prefix (no {path}.index)."
        )
    return path, os.path.dirname(path)


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
    import tensorflow as tf

    if not model.built:
        model.build()
    assert_checkpointable(model)
    # The optimizer slots and the step are not needed: expect_partial.
    status = tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
    # Every model variable must get a value, or a layer would silently stay random.
    status.assert_existing_objects_matched()
    logging.info("Restored %s.", prefix)
    return model
