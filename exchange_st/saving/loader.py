"""One entry point for every model source, recognised once, as KerasHub's `from_preset` does.

    model = loader.load("pretrained/efanet")        # a release
    model = loader.load("runs/cpu_preview")         # a training run folder
    model = loader.load("runs/x/ckpt-500.weights.h5")
    module = loader.load("exports/efanet", saved_model_ok=True)  # a SavedModel

`identify` says what a path is; `load` takes the one path of that kind:

| kind | recognised by | read by |
|---|---|---|
| release | `manifest.json` | `release.load` (inference only) |
| run folder | `latest.weights.h5` (+ `.config.json`) | `from_config` + `load_weights` |
| weights file | `*.weights.h5` (+ `.config.json`) | `from_config` + `load_weights` |
| SavedModel | `saved_model.pb` | `tf.saved_model.load` (a `tf.Module`, not Keras) |
| TF checkpoint | `ckpt-N.index`, or a folder with `checkpoint` | `checkpoints.restore` (the former loop) |

Anything else is refused in one sentence that says what was found there.
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from exchange_st.saving import checkpoints, release, serialization

RELEASE = "release"
RUN = "run folder"
WEIGHTS = "weights file"
SAVED_MODEL = "SavedModel"
TF_CHECKPOINT = "TF checkpoint"
KINDS = (RELEASE, RUN, WEIGHTS, SAVED_MODEL, TF_CHECKPOINT)
# The Keras model kinds: every kind but the SavedModel.
KERAS_KINDS = (RELEASE, RUN, WEIGHTS, TF_CHECKPOINT)

_SAVED_MODEL_FILE = "saved_model.pb"
_TF_CHECKPOINT_STATE = "checkpoint"
_WHAT_EACH_KIND_HAS = (
    f"{release.MANIFEST} (a release), {serialization.WEIGHTS_FILE} (a training run), "
    f"a *.weights.h5 file, {_SAVED_MODEL_FILE} (a SavedModel) or a TF checkpoint"
)


class NotAModel(FileNotFoundError):
    """A path that holds none of the model kinds."""


@dataclasses.dataclass(frozen=True)
class Source:
    """What `identify` found.

    Attributes:
      kind: one of `KINDS`.
      path: the path as given.
      file: what will be read: the weights file, the release or SavedModel
        directory, or the checkpoint prefix (a TF checkpoint folder's
        latest).
    """

    kind: str
    path: str
    file: str


def identify(path) -> Source:
    """What kind of model `path` holds (`KINDS`), decided once from the files there.

    Raises:
      NotAModel: nothing there, or nothing of a known kind; the message says
        what was found.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if release.is_release(path):
            return Source(RELEASE, path, path)
        if os.path.isfile(os.path.join(path, _SAVED_MODEL_FILE)):
            return Source(SAVED_MODEL, path, path)
        weights = serialization.find_weights(path)
        if weights is not None:
            return Source(RUN, path, weights)
        if os.path.isfile(os.path.join(path, _TF_CHECKPOINT_STATE)):
            return Source(TF_CHECKPOINT, path, path)
        raise NotAModel(f"{path} holds no model: {_describe_directory(path)}; {_expected()}.")
    if os.path.isfile(path):
        if path.endswith(serialization.WEIGHTS_SUFFIX):
            return Source(WEIGHTS, path, path)
        name = os.path.basename(path)
        if name in (release.MANIFEST, _SAVED_MODEL_FILE):
            return identify(os.path.dirname(path) or ".")
        raise NotAModel(
            f"{path} is a file of {os.path.getsize(path)} bytes, not a model; {_expected()}."
        )
    if os.path.isfile(path + ".index"):
        return Source(TF_CHECKPOINT, path, path)
    raise NotAModel(f"{path} does not exist (nor {path}.index); {_expected()}.")


def load(
    path=None,
    fallback_config=None,
    *,
    what="model",
    expect=None,
    dtype=None,
    instead=None,
    saved_model_ok=False,
    family=None,
):
    """The model at `path`, whatever its kind (`identify`); None: the pretrained release.

    Args:
      path: a release, training run folder, `.weights.h5` file, SavedModel
        directory or TF checkpoint (prefix or folder); None: the pretrained
        release (`release.default_path()`).
      fallback_config: constructor kwargs for a TF checkpoint whose folder
        lacks `config.json`; None: the paper's defaults.
      what: what the model is for, in error messages (e.g. `"adain"`).
      expect: a model class; a file of another class raises `ValueError`.
      dtype: Keras dtype policy of the rebuilt model (e.g. `"mixed_bfloat16"`
        for inference); None: the current global policy.
      instead: what the caller's user may pass when `path` is None and no
        release ships (e.g. `"--checkpoint_dir"`), for that error.
      saved_model_ok: accept a SavedModel (returned as the loaded `tf.Module`,
        called like `export.StylizeModule`); False refuses it, for callers
        that need the Keras model.
      family: the pretrained model `path=None` means (`"efanet"`, `"adain"`);
        None: AdaIN's when `expect` is `AdaINNet`, else EFANet's.

    Returns:
      The built Keras model with every weight from the source (a mixed
      precision run's float32 variables load into a model of `dtype`), or
      the loaded SavedModel.

    Raises:
      NotAModel: nothing loadable at `path` (the message says what is there).
      release.NoPretrainedModel: `path` is None and no release ships.
      ValueError: a SavedModel where a Keras model is needed, another model
        class than `expect`, or variable shapes unlike the file's.
    """
    if path is None:
        if family is None:
            family = next((f for f, c in serialization.FAMILIES.items() if c is expect), "efanet")
        model = release.load(None, instead=instead, dtype=dtype, family=family)
        _check_class(model, expect, release.default_path(family), what)
        return model
    source = identify(path)
    if source.kind == SAVED_MODEL:
        if not saved_model_ok:
            raise ValueError(
                f"{path} is a SavedModel, but the {what} is needed as a Keras model: pass a "
                "release, a training run folder or a .weights.h5 file."
            )
        return _load_saved_model(source.file)
    if source.kind == RELEASE:
        model = release.load(source.file, dtype=dtype)
        _check_class(model, expect, source.file, what)
    elif source.kind == TF_CHECKPOINT:
        model = checkpoints.load_tf_checkpoint(source.file, fallback_config, what, expect, dtype)
    else:
        overrides = {} if dtype is None else {"dtype": dtype}
        config = serialization.read_model_config(source.file)
        model = serialization.model_from_serialized(config, **overrides)
        _check_class(model, expect, source.file, what)
        model.build()
        model.load_weights(source.file)
        logging.info("Loaded %s (%s).", source.file, type(model).__name__)
    return model


def load_saved_model(path, flag="--saved_model"):
    """The SavedModel at `path` (a loaded `tf.Module`); any other kind is refused by name.

    Args:
      path: a SavedModel directory (or its `saved_model.pb`).
      flag: how the caller's user passed it, for the error.

    Raises:
      NotAModel: nothing loadable there.
      ValueError: another kind of model (e.g. a release: pass that where any
        model is taken).
    """
    source = identify(path)
    if source.kind != SAVED_MODEL:
        raise ValueError(f"{flag}={path} is a {source.kind}, not a SavedModel.")
    return _load_saved_model(source.file)


def _load_saved_model(directory):
    import tensorflow as tf  # SavedModels only.

    logging.info("Loading SavedModel %s.", directory)
    return tf.saved_model.load(directory)


def _check_class(model, expect, path, what):
    if expect is not None and not isinstance(model, expect):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not the {expect.__name__} expected for {what}."
        )


def _describe_directory(path):
    names = sorted(os.listdir(path))
    if not names:
        return "the directory is empty"
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"the directory has {len(names)} entries ({shown})"


def _expected():
    return f"expected {_WHAT_EACH_KIND_HAS}"
