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


def test_code_liveness_sees_a_silenced_compressor():
    """A compressor whose last conv is dead gives every image the same code."""
    model = small_efanet()
    images = tf.random.stateless_uniform([3, 32, 40, 3], seed=[5, 0])
    alive = diagnostics.code_liveness(model, images)
    assert list(alive["convs"]) == [conv.name for conv in model.compressor.convs]
    assert alive["f_std_across"] > 0
    last = model.compressor.convs[-1]
    last.bias.assign(tf.fill(last.bias.shape, -1e3))  # every ReLU negative
    dead = diagnostics.code_liveness(model, images)
    assert dead["convs"][last.name] == {"alive": 0.0, "rms": 0.0}
    assert dead["f_std_across"] == 0.0
    assert "alive channels" in diagnostics.format_liveness(dead)


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


def test_style_gain_is_zero_when_the_style_is_ignored_and_one_when_painted():
    encoder = _model().encoder
    content = tf.random.stateless_uniform([3, 32, 32, 3], seed=[5, 6]).numpy()
    # Three distinct flat-ish styles, so each has its own Gram matrices.
    style = np.stack([np.full([32, 32, 3], v, np.float32) for v in (0.1, 0.5, 0.9)])
    style += 0.1 * tf.random.stateless_uniform([3, 32, 32, 3], seed=[7, 8]).numpy()
    ignores = diagnostics.style_gain(encoder, lambda c, s: c, content, style)
    paints = diagnostics.style_gain(encoder, lambda c, s: s, content, style)
    contrary = diagnostics.style_gain(encoder, lambda c, s: np.roll(s, -1, axis=0), content, style)
    assert ignores == 0.0
    assert paints == pytest.approx(1.0)
    assert contrary < 0.0
    with pytest.raises(ValueError, match="at least 2 pairs"):
        diagnostics.style_gain(encoder, lambda c, s: c, content[:1], style[:1])


def test_crop_identification_tells_image_statistics_from_crop_noise():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(20, 64))
    same = diagnostics.crop_identification(images, images)
    assert same == {"accuracy": 1.0, "within_between": 0.0}
    # Crop noise well below the spread between images: still identified.
    small = diagnostics.crop_identification(
        images + 0.1 * rng.normal(size=images.shape), images + 0.1 * rng.normal(size=images.shape)
    )
    assert small["accuracy"] == 1.0 and small["within_between"] < 0.2
    # Two unrelated draws per image: chance-level identification, ratio ~1.
    noise = diagnostics.crop_identification(images, rng.normal(size=images.shape))
    assert noise["accuracy"] <= 0.2 and 0.7 < noise["within_between"] < 1.3
    with pytest.raises(ValueError, match="N >= 2"):
        diagnostics.crop_identification(images[:1], images[:1])
