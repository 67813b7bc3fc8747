"""Starting a run from a trained model (`TrainConfig.init_from`): a release, a run, a weights file.

A model trained session after session must carry on wherever a machine
comes: a new machine has the shipped release, not the run's checkpoint.
The run then takes the model's weights and its step, and Adam starts fresh
with its warm-up (the moments of another run, or none at all in a release,
would not fit the new phase's data and machine). A release holds only the
inference path (`release.RELEASE_LEFT_OUT`): `decoder_s`, which renders
`I_c->s` and `I_s->s` (Eq. 3-5), starts as a copy of `decoder_c`
(`training_parts="copy"`, the same architecture doing the mirror task) or
fresh; `fc_rec`, Eq. 6's reconstruction layer, starts fresh either way.
"""

from __future__ import annotations

import os

import keras
from absl import logging

from exchange_st.saving import loader, release, serialization
from exchange_st.training import history as history_lib

TRAINING_PARTS = ("copy", "fresh")
# Configuration entries that do not change a model's variables.
_NOT_ARCHITECTURE = {"name", "trainable", "dtype", "vgg_weights", "vgg_feature_scales"}


def _architecture_diff(saved, model) -> str:
    """The constructor arguments in which `saved` (a model) and `model` differ, for errors."""
    a, b = saved.get_config(), model.get_config()
    keys = sorted(k for k in set(a) | set(b) if k not in _NOT_ARCHITECTURE and a.get(k) != b.get(k))
    return ", ".join(f"{k}: saved {a.get(k)!r} vs this run's {b.get(k)!r}" for k in keys)


# The sources a run can start from: they hold Keras weights and say their step.
_STARTS = (loader.RELEASE, loader.RUN, loader.WEIGHTS)


def check(path) -> loader.Source:
    """What `path` is (`loader.identify`); raises, in one sentence, unless a run can start from it.

    Raises:
      loader.NotAModel: nothing loadable there.
      ValueError: a SavedModel or TF checkpoint, which hold no Keras weights to continue.
    """
    source = loader.identify(path)
    if source.kind not in _STARTS:
        raise ValueError(
            f"init_from={path} is a {source.kind}; a run starts from a release, a training "
            "model_dir or a .weights.h5 file."
        )
    return source


def load_into(model, path, training_parts="copy") -> dict:
    """Sets `model`'s weights from the trained model at `path`; returns where it stands.

    Args:
      model: the run's built, compiled model (its optimizer is left alone).
      path: a release directory, a training model_dir or a `.weights.h5` file.
      training_parts: a release's missing `decoder_s`: `"copy"` of
        `decoder_c` or `"fresh"` (this model's initialisation).

    Returns:
      `{"step": the model's training step, "history": its phases
      (`history`), "source": what was loaded}`.

    Raises:
      FileNotFoundError: nothing loadable at `path`.
      ValueError: a model of another architecture than `model`'s.
    """
    if training_parts not in TRAINING_PARTS:
        raise ValueError(f"training_parts must be one of {TRAINING_PARTS}, got {training_parts!r}")
    path = os.fspath(path)
    source = check(path)
    is_release = source.kind == loader.RELEASE
    if is_release:
        manifest = release.read_manifest(path)
        provenance = manifest.get("provenance", {})
        step = int(provenance.get("checkpoint_step") or 0)
        phases = list(provenance.get("history") or [])
    else:
        weights = source.file
        step = int(serialization.saved_step(weights) or 0)
        phases = history_lib.read(os.path.dirname(weights))
    saved = loader.load(path, what=f"init_from={path}", expect=type(model))
    # Variable paths repeat across sub-layers (the decoders' convs are named
    # alike); the creation order of one class and config does not.
    pairs = list(zip(saved.weights, model.weights))
    if len(saved.weights) != len(model.weights) or any(a.shape != b.shape for a, b in pairs):
        raise ValueError(
            f"init_from={path} holds a model of another architecture than this run's "
            f"({_architecture_diff(saved, model) or 'variables differ'}); start it with the "
            "saved settings"
        )
    left_out = set(getattr(saved, "RELEASE_LEFT_OUT", ())) if is_release else set()
    skipped = {id(v) for name in left_out for v in getattr(saved, name).weights}
    copied = 0
    for theirs, mine in pairs:
        if id(theirs) not in skipped:
            mine.assign(keras.ops.convert_to_numpy(theirs))
            copied += 1
    if "decoder_s" in left_out and training_parts == "copy":
        for mine, theirs in zip(model.decoder_s.weights, model.decoder_c.weights, strict=True):
            mine.assign(keras.ops.convert_to_numpy(theirs))
    if not phases and step:
        phases = [{"start_step": 0, "end_step": step, "hours": None, "unrecorded": True}]
    logging.info(
        "Initialised %d variables from %s at step %d%s; Adam starts fresh.",
        copied,
        path,
        step,
        f" ({', '.join(sorted(left_out))}: {training_parts})" if left_out else "",
    )
    return {"step": step, "history": phases, "source": path}
