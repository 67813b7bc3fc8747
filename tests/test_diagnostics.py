"""Trainability diagnostics: every trainable variable has a group; stages and norms are reported."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_efanet

from exchange_st.evaluation import diagnostics
from exchange_st.nn import losses
from exchange_st.nn.model import ExchangeStyleTransfer


def _model(**overrides):
    keras.utils.set_random_seed(0)
    model = ExchangeStyleTransfer(
        vgg_weights=None,
        compressor_filters=(4, 4, 4, 4, 4),
        upsample_filters=(8, 8, 8),
        **overrides,
    )
    model.build()
    return model


def test_groups_partition_the_trainable_variables():
    model = _model()
    groups = diagnostics.variable_groups(model)
    ids = [id(v) for vs in groups.values() for v in vs]
    assert sorted(ids) == sorted(id(v) for v in model.trainable_variables)
    assert all(groups.values())


def test_stage_statistics_and_gradient_norms():
    model = _model()
    content = tf.random.stateless_uniform([2, 32, 32, 3], seed=[1, 2])
    style = tf.random.stateless_uniform([2, 32, 32, 3], seed=[3, 4])
    stats = diagnostics.stage_statistics(model, content, style)
    for stage in ("f_vgg_c", "v_c_s", "content_code", "R_pool", "R_fusion", "upsample2", "s2c"):
        assert np.isfinite(stats[stage]["std"]), stage
    # The scaled initialisation keeps R_fusion near the content code's scale.
    assert stats["R_fusion"]["std"] > 0.1 * stats["content_code"]["std"]
    values, norms = diagnostics.gradient_norms(model, content, style)
    assert set(norms) == set(diagnostics.LOSS_TERMS)
    # L_com (Eq. 6) only reaches the code path, never the decoders.
    assert norms["com"]["compressor"] > 0 and norms["com"]["upsampler"] == 0
    assert norms["rec"]["upsampler"] > 0
    report = diagnostics.format_report(stats, values, norms)
    assert "R_fusion" in report and "upsampler" in report


def test_zero_heads_shield_the_codes_from_the_image_losses_at_initialisation():
    """`scaled_zero_heads`: only Eq. 6 trains the code path until the heads' kernels move."""
    model = _model(initialization="scaled_zero_heads")
    content = tf.random.stateless_uniform([2, 32, 32, 3], seed=[1, 2])
    style = tf.random.stateless_uniform([2, 32, 32, 3], seed=[3, 4])
    _, norms = diagnostics.gradient_norms(model, content, style)
    for term in ("content", "style", "rec"):
        assert norms[term]["compressor"] == 0.0 and norms[term]["exchange"] == 0.0, term
        assert norms[term]["heads"] > 0, term
    assert norms["com"]["compressor"] > 0


def test_detached_eq6_trains_the_exchange_path_but_not_the_compressor():
    """`exchange_targets="detached"`: same Eq. 6 value as `"fixed"`, no Eq. 6 gradient upstream."""
    content = tf.random.stateless_uniform([2, 32, 32, 3], seed=[1, 2])
    style = tf.random.stateless_uniform([2, 32, 32, 3], seed=[3, 4])
    results = {}
    for targets in ("fixed", "detached"):
        model = _model(exchange_targets=targets)
        results[targets] = diagnostics.gradient_norms(model, content, style)
    (fixed_values, fixed_norms), (values, norms) = results["fixed"], results["detached"]
    assert values["com"] == pytest.approx(fixed_values["com"], rel=1e-5)
    assert fixed_norms["com"]["compressor"] > 0
    assert norms["com"]["compressor"] == 0.0
    assert norms["com"]["exchange"] > 0 and norms["com"]["codes"] > 0
    # The image losses still train the compressor through the heads.
    assert norms["style"]["compressor"] > 0


def test_detached_eq6_needs_the_models_copy_of_the_exchange_path():
    model = small_efanet()
    content = tf.random.stateless_uniform([1, 32, 32, 3], seed=[6, 0])
    out = model(content, content, training=True)
    config = losses.LossConfig(exchange_targets="detached")
    with pytest.raises(ValueError, match="exchange_targets='detached'"):
        losses.compute_losses(out, content, content, model.encoder, config)
