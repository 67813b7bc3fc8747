"""One model on disk: its weights file, the config that rebuilds it, and the run's config.

A training `model_dir` holds `latest.weights.h5` (`model.save_weights`: the
model, the optimizer state and its step; any backend writes it, any backend
reads it) and `latest.config.json` (the model's class and `get_config()`),
so a model is rebuilt with `from_config` and its weights loaded with no
architecture flags and no conversion step. `checkpoints` builds on this to
load any model source.
"""

from __future__ import annotations

import inspect
import json
import os
import re

import keras
from absl import logging

from exchange_st.baselines.adain import AdaINNet
from exchange_st.nn.model import ExchangeStyleTransfer

# The model families a config may name; importing them registers their
# classes for `keras.saving.deserialize_keras_object`.
FAMILIES = {"efanet": ExchangeStyleTransfer, "adain": AdaINNet}

# The resolved training config (`TrainConfig`), written by train_lib.
CONFIG_FILE = "config.json"


# The latest training state: weights, optimizer slots and step.
WEIGHTS_FILE = "latest.weights.h5"


WEIGHTS_SUFFIX = ".weights.h5"


# Next to `<name>.weights.h5`: the model that reads it.
_CONFIG_SUFFIX = ".config.json"


_SERIALIZED_KEYS = ("module", "class_name", "registered_name", "config")


_STEP_ATTRIBUTE = "exchange_st_step"


def config_path(weights_path):
    """`<name>.config.json` next to `<name>.weights.h5`."""
    weights_path = os.fspath(weights_path)
    if not weights_path.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"A weights file must end in {WEIGHTS_SUFFIX}: {weights_path}")
    return weights_path[: -len(WEIGHTS_SUFFIX)] + _CONFIG_SUFFIX


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
    if path.endswith(WEIGHTS_SUFFIX):
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


def constructor_keys(cls):
    """Constructor arguments of a model class that a config may set.

    `vgg_weights` is excluded: a restored model's VGG weights come from the
    file, not from the config.
    """
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
            "kept in a list must also be attributes (see ops.track_layer_list)."
        )
