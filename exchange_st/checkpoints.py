"""Saving, finding and loading trained models: one loader for every tool.

A training `model_dir` holds `latest.weights.h5` (`model.save_weights`: the
model, the optimizer state and its step; any backend writes it, any backend
reads it) and `latest.config.json` (the model's class and `get_config()`),
so `load_model` rebuilds the network with `from_config` and loads the
weights with no architecture flags and no conversion step. Older runs of
the TensorFlow-only training loop (`tf.train.Checkpoint` files `ckpt-N.*`
next to the run's `config.json`) still load, on TensorFlow.

TensorFlow is imported only for those legacy checkpoints.
"""

from __future__ import annotations

import json
import os
import re

import keras
import numpy as np
from absl import logging

from exchange_st import vgg as vgg_lib

# The resolved training config (`TrainConfig`), written by train_lib.
CONFIG_FILE = "config.json"
# The latest training state: weights, optimizer slots and step.
WEIGHTS_FILE = "latest.weights.h5"
_WEIGHTS_SUFFIX = ".weights.h5"
# Next to `<name>.weights.h5`: the model that reads it.
_CONFIG_SUFFIX = ".config.json"
_SERIALIZED_KEYS = ("module", "class_name", "registered_name", "config")
_STEP_ATTRIBUTE = "exchange_st_step"


def config_path(weights_path):
    """`<name>.config.json` next to `<name>.weights.h5`."""
    weights_path = os.fspath(weights_path)
    if not weights_path.endswith(_WEIGHTS_SUFFIX):
        raise ValueError(f"A weights file must end in {_WEIGHTS_SUFFIX}: {weights_path}")
    return weights_path[: -len(_WEIGHTS_SUFFIX)] + _CONFIG_SUFFIX


def _atomic_write_text(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def serialize_model(model):
    """`model`'s class and `get_config()`, JSON-ready (what `model_from_serialized` reads)."""
    serialized = keras.saving.serialize_keras_object(model)
    # The architecture only: no optimizer (`compile_config`), no build shapes.
    return {k: serialized[k] for k in _SERIALIZED_KEYS if k in serialized}


def model_from_serialized(serialized, **overrides):
    """An unbuilt model from `serialize_model`'s dict, constructor `overrides` applied."""
    _registered_models()
    config = dict(serialized.get("config", {}))
    # The run's dtype policy (e.g. mixed_float16) is a training choice.
    config.pop("dtype", None)
    config.update(overrides)
    serialized = {k: serialized[k] for k in _SERIALIZED_KEYS if k in serialized}
    serialized["config"] = config
    return keras.saving.deserialize_keras_object(serialized)


def write_model_config(model, weights_path):
    """Writes `model`'s class and `get_config()` next to `weights_path` (atomically)."""
    serialized = serialize_model(model)
    _atomic_write_text(config_path(weights_path), json.dumps(serialized, indent=2, sort_keys=True))


def save_weights(model, path, step=None):
    """`model.save_weights(path)` plus its config JSON, each replaced atomically.

    The weights are written under a temporary name and renamed, so a run
    killed while saving leaves the previous file intact, never half a file.
    They include the optimizer's variables (slots, `iterations`) when the
    model is compiled. The config is written first: it never changes within
    a run.

    Args:
      model: a built Keras model.
      path: `<name>.weights.h5`.
      step: if given, stored in the file (an HDF5 attribute, see
        `saved_step`): the training step, which differs from the optimizer's
        `iterations` when a float16 loss scale skips updates.
    """
    import h5py  # Keras' own weights format.

    path = os.fspath(path)
    directory, name = os.path.split(path)
    os.makedirs(directory or ".", exist_ok=True)
    write_model_config(model, path)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    try:
        model.save_weights(tmp)
        if step is not None:
            with h5py.File(tmp, "a") as f:
                f.attrs[_STEP_ATTRIBUTE] = int(step)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)
    return path


def remove_stale_temporaries(directory):
    """Deletes the temporary files of saves that a killed process left in `directory`.

    `save_weights` writes `.tmp-<pid>-<name>` and renames it; a SIGKILL
    during the write leaves the temporary file (hundreds of MB) behind. Files
    of processes still running (another writer) are kept.

    Returns:
      The paths removed.
    """
    removed = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        match = re.fullmatch(r"\.tmp-(\d+)-.+", name)
        if not match or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        size = os.path.getsize(path)
        os.remove(path)
        removed.append(path)
        logging.info("Removed %s (%.0f MB), left by a save that was interrupted.", path, size / 1e6)
    return removed


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Someone else's live process.
        return True
    return True


def saved_step(path):
    """The training step `save_weights` stored in `path`, or None."""
    import h5py

    with h5py.File(os.fspath(path), "r") as f:
        step = f.attrs.get(_STEP_ATTRIBUTE)
    return None if step is None else int(step)


def find_weights(path):
    """The weights file `path` names (a `.weights.h5` file or a model_dir), or None."""
    path = os.fspath(path)
    if path.endswith(_WEIGHTS_SUFFIX):
        return path if os.path.isfile(path) else None
    candidate = os.path.join(path, WEIGHTS_FILE)
    return candidate if os.path.isfile(candidate) else None


def read_model_config(weights_path):
    """The serialized model (`{"class_name", "config", ...}`) next to `weights_path`."""
    path = config_path(weights_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} is missing: the weights file {weights_path} cannot say which model "
            "reads it (train_lib writes both)."
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _registered_models():
    # Importing the modules registers their classes for deserialization.
    from exchange_st.baselines.adain import AdaINNet
    from exchange_st.model import ExchangeStyleTransfer

    return {"efanet": ExchangeStyleTransfer, "adain": AdaINNet}


def load_model(path, fallback_config=None, what="model", expect=None, dtype=None):
    """Rebuilds a trained model (`from_config`) and loads its weights.

    Args:
      path: a training `model_dir`, a `<name>.weights.h5` file (with its
        `<name>.config.json`), a pretrained release directory (its
        `manifest.json`, see `exchange_st.release`; inference only), or, for
        runs of the old TensorFlow loop, a checkpoint prefix such as
        `model_dir/ckpt-1000` (TensorFlow only).
      fallback_config: constructor kwargs for a legacy checkpoint whose
        model_dir lacks `config.json`; None means the paper defaults.
      what: what the file is of, for error messages (e.g. `"adain"`).
      expect: a model class (e.g. `ExchangeStyleTransfer`); another class
        in the file raises `ValueError`. None accepts either.
      dtype: Keras dtype policy of the rebuilt model (e.g.
        `"mixed_bfloat16"` for inference); None: the current global policy.

    Returns:
      The built model with every variable (the VGG encoder's included) from
      the file, in the current dtype policy (a mixed-precision run's
      float32 variables load into a float32 model).

    Raises:
      FileNotFoundError: nothing loadable at `path`.
      ValueError: another model family than `expect`, or variable shapes
        that differ from the file's.
    """
    from exchange_st import release  # Imports this module.

    weights = find_weights(path)
    if weights is None and release.is_release(path):
        model = release.load(path, dtype=dtype)
        _check_family(model, expect, path, what)
        return model
    if weights is None:
        return _load_legacy(path, fallback_config, what, expect, dtype)
    overrides = {} if dtype is None else {"dtype": dtype}
    model = model_from_serialized(read_model_config(weights), **overrides)
    _check_family(model, expect, weights, what)
    model.build()
    model.load_weights(weights)
    logging.info("Loaded %s (%s).", weights, type(model).__name__)
    return model


def _check_family(model, expect, path, what):
    if expect is not None and not isinstance(model, expect):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not the {expect.__name__} expected for {what}."
        )


def _load_legacy(path, fallback_config, what, expect, dtype=None):
    """A model from a `tf.train.Checkpoint` of the former TensorFlow training loop."""
    prefix, model_dir = resolve_checkpoint(path, what)
    config = read_run_config(model_dir)
    if isinstance(config.get("model"), dict):
        config = config["model"]
    families = _registered_models()
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


def constructor_keys(cls):
    """Constructor arguments of a model class that a config may set.

    `vgg_weights` is excluded: a restored model's VGG weights come from the
    file, not from the config.
    """
    import inspect

    return tuple(
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "vgg_weights") and p.kind is p.POSITIONAL_OR_KEYWORD
    )


def model_config_of(model):
    """The constructor hyperparameters of `model` (from `get_config`), JSON-ready."""
    keys = constructor_keys(type(model))
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in model.get_config().items()
        if k in keys
    }


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
    keys = constructor_keys(_registered_models()[family])
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
    model = _registered_models()[family](vgg_weights=vgg_weights, **(model_config or {}))
    model.build()
    return model


def load_adain_model(path):
    """An `AdaINNet` from a `train.py --model=adain` run (`load_model`).

    Args:
      path: model_dir, `.weights.h5` file or legacy checkpoint prefix.
    """
    from exchange_st.baselines.adain import AdaINNet

    return load_model(path, what="adain", expect=AdaINNet)


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


def read_run_config(model_dir):
    """The `config.json` train_lib wrote into `model_dir`, or `{}` if there is none."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def checkpoint_dependencies(root):
    """ids of every object (`root` included) a `tf.train.Checkpoint` of `root` reaches."""
    import tensorflow as tf

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
