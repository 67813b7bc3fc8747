"""Tests for exchange_st.saving.loader: one entry point that recognises each model kind once."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from exchange_st.baselines.adain import AdaINNet
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import export, loader, release, serialization
from exchange_st.training import warm_start


@pytest.fixture(scope="module")
def sources(tmp_path_factory, tiny_release):
    """One folder or file of each kind, all holding the same tiny model."""
    tmp = tmp_path_factory.mktemp("loader")
    model = tiny_release["model"]
    run = tmp / "run"
    weights = serialization.save_weights(model, run / serialization.WEIGHTS_FILE, step=7)
    step_file = serialization.save_weights(model, run / "ckpt-7.weights.h5", step=7)
    saved_model = str(tmp / "saved_model")
    export.export_saved_model(model, saved_model)
    checkpoint_dir = tmp / "tf_checkpoint"
    prefix = tf.train.Checkpoint(model=model).save(str(checkpoint_dir / "ckpt"))
    # The former loop's run config: flat, with the family under "model".
    config = dict(serialization.model_config_of(model), model="efanet")
    (checkpoint_dir / "config.json").write_text(json.dumps(config))
    return {
        loader.RELEASE: tiny_release["path"],
        loader.RUN: str(run),
        loader.WEIGHTS: str(step_file),
        loader.SAVED_MODEL: saved_model,
        loader.TF_CHECKPOINT: prefix,
        "tf_checkpoint_dir": str(checkpoint_dir),
        "latest": str(weights),
        "model": model,
    }


def test_each_kind_is_recognised_once(sources):
    for kind in loader.KINDS:
        assert loader.identify(sources[kind]).kind == kind, kind
    assert loader.identify(sources[loader.RUN]).file == sources["latest"]
    assert loader.identify(sources["tf_checkpoint_dir"]).kind == loader.TF_CHECKPOINT
    # A release's or SavedModel's own index file names its folder.
    manifest = os.path.join(sources[loader.RELEASE], "manifest.json")
    assert loader.identify(manifest) == loader.Source(
        loader.RELEASE, sources[loader.RELEASE], sources[loader.RELEASE]
    )
    pb = os.path.join(sources[loader.SAVED_MODEL], "saved_model.pb")
    assert loader.identify(pb).kind == loader.SAVED_MODEL


def test_every_keras_kind_loads_the_same_stylization(sources):
    rng = np.random.default_rng(0)
    content = rng.uniform(size=(1, 40, 52, 3)).astype("float32")
    style = rng.uniform(size=(1, 36, 44, 3)).astype("float32")
    want = sources["model"].stylize(content, style).numpy()
    for kind in loader.KERAS_KINDS:
        model = loader.load(sources[kind], expect=ExchangeStyleTransfer)
        got = model.stylize(content, style).numpy()
        if kind == loader.RELEASE:
            # int8 kernels: what the release reader gives, near the float model.
            direct = release.load(sources[kind]).stylize(content, style).numpy()
            np.testing.assert_allclose(got, direct, atol=1e-6)
            assert np.abs(got - want).mean() < 2 / 255
        else:
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=kind)
    module = loader.load(sources[loader.SAVED_MODEL], saved_model_ok=True)
    np.testing.assert_allclose(module(content, style).numpy(), want, atol=1e-5)


def test_a_saved_model_where_keras_is_needed_says_what_to_pass(sources):
    with pytest.raises(ValueError, match="is a SavedModel, but the export is needed as a Keras"):
        loader.load(sources[loader.SAVED_MODEL], what="export")
    with pytest.raises(ValueError, match="init_from=.* is a SavedModel; a run starts from"):
        warm_start.check(sources[loader.SAVED_MODEL])
    # Where only a SavedModel will do, any other kind is refused by name.
    with pytest.raises(ValueError, match=r"--saved_model=.* is a release, not a SavedModel"):
        loader.load_saved_model(sources[loader.RELEASE])


def test_another_class_is_refused_by_name(sources):
    with pytest.raises(ValueError, match="holds a ExchangeStyleTransfer, not the AdaINNet"):
        loader.load(sources[loader.WEIGHTS], what="adain", expect=AdaINNet)


def test_what_cannot_be_loaded_is_described(tmp_path):
    with pytest.raises(loader.NotAModel, match="is empty"):
        loader.identify(tmp_path)
    for name in ("notes.txt", "b.png", "c.png", "d.png", "e.png", "f.png"):
        (tmp_path / name).write_bytes(b"12345")
    with pytest.raises(loader.NotAModel, match=r"has 6 entries \(b.png, .* and 1 more\)"):
        loader.identify(tmp_path)
    with pytest.raises(loader.NotAModel, match="notes.txt is a file of 5 bytes, not a model"):
        loader.load(str(tmp_path / "notes.txt"))
    with pytest.raises(loader.NotAModel, match="nowhere does not exist"):
        loader.load(str(tmp_path / "nowhere"))
