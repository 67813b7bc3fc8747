"""Tests for exchange_st.saving.checkpoints: finding, checking and restoring training checkpoints."""

import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL_EFANET, small_efanet

from exchange_st.baselines.adain import AdaINNet
from exchange_st.saving import serialization
from exchange_st.nn import vgg
from exchange_st.nn.ops import track_layer_list
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import checkpoints, loader

TINY_EFANET = dict(
    SMALL_EFANET,
    code_dim=8,
    compressor_filters=(4, 4),
    num_post_fusion_blocks=1,
    upsample_filters=(8, 8, 8),
)


def _save_like_train_lib(model, model_dir, step=3):
    """Writes `model` as train_lib does: model, built Adam and step; returns the prefix."""
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, step=tf.Variable(step, dtype=tf.int64)
    )
    manager = tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=2)
    return manager.save(checkpoint_number=step)


def _perturb(model, seed):
    """Moves every variable away from its initial value, VGG and feature scales included."""
    rng = np.random.default_rng(seed)
    for v in model.variables:
        value = v.numpy()
        # Relative, so a random decoder's outputs stay in the unclipped range.
        v.assign(value * rng.uniform(1.01, 1.1, value.shape).astype(value.dtype) + 1e-3)


def _assert_same_variables(want, got):
    # Paths differ by the model name's suffix; the order is the build order.
    assert len(want.variables) == len(got.variables)
    for a, b in zip(want.variables, got.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_resolve_checkpoint_from_directory_and_prefix(tmp_path):
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    checkpoint = tf.train.Checkpoint(model=layer)
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=3)
    first = manager.save(checkpoint_number=1)
    latest = manager.save(checkpoint_number=5)
    assert checkpoints.resolve_checkpoint(tmp_path) == (latest, str(tmp_path))
    # An older checkpoint by prefix; its directory is the model_dir.
    assert checkpoints.resolve_checkpoint(first) == (first, str(tmp_path))


def test_resolve_checkpoint_errors_name_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"No adain checkpoint in directory {tmp_path}"):
        checkpoints.resolve_checkpoint(tmp_path, "adain")
    missing = os.path.join(tmp_path, "ckpt-7")
    with pytest.raises(FileNotFoundError, match=r"ablation checkpoint not found: .*ckpt-7\.index"):
        checkpoints.resolve_checkpoint(missing, "ablation")
    with pytest.raises(FileNotFoundError, match="^model checkpoint not found"):
        checkpoints.resolve_checkpoint(os.path.join(tmp_path, "no_dir"))


def test_read_run_config(tmp_path):
    assert serialization.read_run_config(tmp_path) == {}
    config = {"model": "adain", "upsample_filters": [8, 8, 8], "vgg_weights": None}
    with open(tmp_path / serialization.CONFIG_FILE, "w") as f:
        json.dump(config, f)
    assert serialization.read_run_config(str(tmp_path)) == config


def test_restore_round_trip_exchange_model(tmp_path):
    keras.utils.set_random_seed(1)
    model = ExchangeStyleTransfer(vgg_weights=None, **TINY_EFANET)
    model.build()
    _perturb(model, seed=1)
    prefix = _save_like_train_lib(model, tmp_path)

    # Another seed and an unbuilt model: restore builds it and overwrites all.
    keras.utils.set_random_seed(2)
    restored = checkpoints.restore(ExchangeStyleTransfer(vgg_weights=None, **TINY_EFANET), prefix)
    assert restored.built
    _assert_same_variables(model, restored)
    content = tf.random.stateless_uniform([1, 24, 40, 3], seed=[1, 2])
    style = tf.random.stateless_uniform([1, 32, 32, 3], seed=[3, 4])
    np.testing.assert_allclose(
        restored.stylize(content, style, 0.5).numpy(),
        model.stylize(content, style, 0.5).numpy(),
        atol=1e-6,
    )
    # A layer the checkpoint has no values for must not silently stay random.
    deeper = ExchangeStyleTransfer(vgg_weights=None, **dict(TINY_EFANET, num_exchange_blocks=2))
    with pytest.raises(AssertionError, match="not bound to checkpointed values"):
        checkpoints.restore(deeper, prefix)


def test_restore_round_trip_adain_takes_feature_scales_from_the_checkpoint(tmp_path):
    keras.utils.set_random_seed(3)
    scales = (2.0, 3.0, 5.0, 7.0)
    model = AdaINNet(vgg_weights=None, vgg_feature_scales=scales, upsample_filters=(8, 8, 8))
    model.build()
    prefix = _save_like_train_lib(model, tmp_path)

    keras.utils.set_random_seed(4)
    fresh = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
    assert fresh.encoder.feature_scales != scales
    restored = checkpoints.restore(fresh, prefix)
    assert restored.encoder.feature_scales == scales
    _assert_same_variables(model, restored)
    content = tf.random.stateless_uniform([1, 32, 24, 3], seed=[5, 6])
    np.testing.assert_allclose(
        restored.stylize(content, content[:, ::-1]).numpy(),
        model.stylize(content, content[:, ::-1]).numpy(),
        atol=1e-6,
    )


def test_restore_refuses_other_layer_widths(tmp_path):
    keras.utils.set_random_seed(5)
    model = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
    model.build()
    prefix = _save_like_train_lib(model, tmp_path)
    with pytest.raises(ValueError, match="incompatible tensor"):
        checkpoints.restore(AdaINNet(vgg_weights=None, upsample_filters=(16, 8, 8)), prefix)


class _Stack(keras.layers.Layer):
    """Two 1x1 convs after a first one; `track=False` keeps them only in a list."""

    def __init__(self, track=True, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Conv2D(3, 1)
        self.rest = [keras.layers.Conv2D(3, 1) for _ in range(2)]
        if track:
            track_layer_list(self, "rest", self.rest)

    def build(self, input_shape=None):
        for layer in (self.first, *self.rest):
            layer.build((None, None, None, 3))
        self.built = True

    def call(self, inputs):
        for layer in (self.first, *self.rest):
            inputs = layer(inputs)
        return inputs


def test_unreachable_variables_are_detected(tmp_path):
    hidden = _Stack(track=False)
    hidden.build()
    reached = serialization.checkpoint_dependencies(hidden)
    assert id(hidden) in reached and id(hidden.first.kernel) in reached
    assert id(hidden.rest[0].kernel) not in reached
    # 2 list-held convs x (kernel, bias).
    with pytest.raises(AssertionError, match="would not save or restore 4 variables of _Stack"):
        serialization.assert_checkpointable(hidden)
    tracked = _Stack(track=True)
    tracked.build()
    serialization.assert_checkpointable(tracked)

    # What a checkpoint of such a model holds (written before every layer was
    # tracked) cannot fill a model that tracks everything: refused, not half-restored.
    prefix = tf.train.Checkpoint(model=hidden).save(os.path.join(tmp_path, "ckpt"))
    with pytest.raises(AssertionError):
        checkpoints.restore(_Stack(track=True), prefix)
    with pytest.raises(AssertionError, match="would not save or restore"):
        checkpoints.restore(_Stack(track=False), prefix)


# ----------------------------------------------------------------------------
# Weights files (what train_lib writes on every backend) and the one loader.
# ----------------------------------------------------------------------------


def test_save_weights_and_load_model_round_trip(tmp_path):
    keras.utils.set_random_seed(6)
    model = ExchangeStyleTransfer(vgg_weights=None, style_weight=3.0, **TINY_EFANET)
    model.build()
    _perturb(model, seed=6)
    path = serialization.save_weights(model, tmp_path / "run" / serialization.WEIGHTS_FILE)
    assert sorted(os.listdir(tmp_path / "run")) == ["latest.config.json", "latest.weights.h5"]
    adain = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8), adain_style_weight=4.0)
    adain.build()
    adain_path = serialization.save_weights(adain, tmp_path / "adain" / "step-3.weights.h5", step=3)
    assert serialization.config_path(adain_path).endswith("adain/step-3.config.json")
    # The training step travels inside the file (float16 runs skip optimizer steps).
    assert serialization.saved_step(adain_path) == 3 and serialization.saved_step(path) is None

    content = tf.random.stateless_uniform([1, 24, 40, 3], seed=[1, 2])
    style = tf.random.stateless_uniform([1, 32, 32, 3], seed=[3, 4])
    keras.utils.set_random_seed(7)  # The loader's fresh weights all get replaced.
    for source in (tmp_path / "run", path):
        loaded = loader.load(source, expect=ExchangeStyleTransfer)
        assert loaded.get_config() == model.get_config()
        assert loaded.loss_config.style_weight == 3.0
        _assert_same_variables(model, loaded)
        np.testing.assert_allclose(
            loaded.stylize(content, style, 0.5).numpy(),
            model.stylize(content, style, 0.5).numpy(),
            atol=1e-6,
        )
    loaded = loader.load(adain_path)
    assert isinstance(loaded, AdaINNet) and loaded.adain_style_weight == 4.0
    _assert_same_variables(adain, loaded)
    with pytest.raises(ValueError, match="holds a AdaINNet, not the ExchangeStyleTransfer"):
        loader.load(adain_path, expect=ExchangeStyleTransfer)
    os.remove(serialization.config_path(adain_path))
    with pytest.raises(FileNotFoundError, match="step-3.config.json is missing"):
        loader.load(adain_path)


def test_load_model_builds_in_the_current_policy(tmp_path):
    """A mixed-precision run's weights (float32 variables) load into a float32 model."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
        model.build()
        path = serialization.save_weights(model, tmp_path / serialization.WEIGHTS_FILE)
    finally:
        keras.config.set_dtype_policy(previous)
    loaded = loader.load(path)
    assert loaded.dtype_policy.name == "float32"
    _assert_same_variables(model, loaded)


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    model = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
    model.build()
    path = serialization.save_weights(model, tmp_path / serialization.WEIGHTS_FILE)
    before = [v.numpy() for v in model.variables]
    _perturb(model, seed=8)

    def dies_while_writing(self, filepath, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half an h5 file")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(keras.Model, "save_weights", dies_while_writing)
    with pytest.raises(KeyboardInterrupt):
        serialization.save_weights(model, path)
    monkeypatch.undo()
    loaded = loader.load(tmp_path)
    for want, v in zip(before, loaded.variables):
        np.testing.assert_array_equal(want, v.numpy())
    # No half-written file is left behind.
    assert sorted(os.listdir(tmp_path)) == ["latest.config.json", serialization.WEIGHTS_FILE]


def test_warns_about_a_model_trained_with_a_random_vgg_only(caplog):
    random_vgg = small_efanet()
    imagenet_scaled = small_efanet(vgg_feature_scales=vgg.FEATURE_SCALES)
    with caplog.at_level(logging.WARNING, logger="absl"):
        assert checkpoints.warn_if_random_vgg(random_vgg, "runs/smoke")
        assert not checkpoints.warn_if_random_vgg(imagenet_scaled, "runs/real")
    assert "runs/smoke was trained with a RANDOM VGG-19" in caplog.text
    assert "runs/real" not in caplog.text
