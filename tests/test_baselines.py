"""Tests of the AdaIN, Gatys and WCT baselines (random VGG, tiny images)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from exchange_st.baselines import adain as adain_lib
from exchange_st.baselines import gatys as gatys_lib
from exchange_st.baselines import wct as wct_lib
from exchange_st.nn import losses
from exchange_st.nn.vgg import FEATURE_NAMES


@pytest.fixture(scope="module")
def net():
    keras.utils.set_random_seed(7)
    model = adain_lib.AdaINNet(vgg_weights=None)
    model.build()
    return model


def _images(b, h, w, seed=0):
    return tf.random.stateless_uniform([b, h, w, 3], seed=[seed, 1])


def test_adain_matches_style_channel_statistics():
    content = tf.random.normal([2, 5, 7, 16], mean=3.0, stddev=2.0, seed=1)
    style = tf.random.normal([2, 9, 4, 16], mean=-1.0, stddev=0.5, seed=2) * tf.range(1.0, 17.0)
    out = adain_lib.adain(content, style)
    self_mean, self_var = tf.nn.moments(out, axes=[1, 2])
    s_mean, s_var = tf.nn.moments(style, axes=[1, 2])
    np.testing.assert_allclose(self_mean, s_mean, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(self_var), np.sqrt(s_var), rtol=1e-3, atol=1e-3)
    assert out.shape == content.shape


def test_adain_broadcasts_one_style_over_batch():
    content = tf.random.normal([3, 4, 4, 8], seed=3)
    style = tf.random.normal([1, 6, 6, 8], seed=4)
    out = adain_lib.adain(content, style)
    single = adain_lib.adain(content[1:2], style)
    np.testing.assert_allclose(out[1:2], single, atol=1e-5)


def test_mean_std_loss_zero_for_identical_and_positive_otherwise():
    feats = [tf.random.uniform([2, 8, 8, 4], seed=i) for i in range(4)]
    other = [f * 2.0 + 1.0 for f in feats]
    same = losses.mean_std_loss(feats, feats)
    diff = losses.mean_std_loss(feats, other)
    assert set(same) == set(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        assert float(same[name]) == pytest.approx(0.0, abs=1e-10)
        assert float(diff[name]) > 0.5


@pytest.mark.parametrize("size", [(67, 101), (32, 48)])
def test_adainnet_output_sizes(net, size):
    content = _images(2, *size)
    style = _images(2, 41, 29, seed=5)
    out = net(content, style)
    h8, w8 = -(-size[0] // 8), -(-size[1] // 8)
    assert out["s2c"].shape == (2, *size, 3)
    assert out["t"].shape == (2, h8, w8, 512)
    assert len(out["feats_c"]) == 4 and len(out["feats_s"]) == 4
    assert out["feats_s"][-1].shape == (2, 6, 4, 512)


def test_adainnet_stylize_range_single_style_and_alpha(net):
    content = _images(3, 67, 101)
    style = _images(1, 40, 40, seed=6)
    image = net.stylize(content, style)
    assert image.shape == (3, 67, 101, 3)
    assert float(tf.reduce_min(image)) >= 0.0 and float(tf.reduce_max(image)) <= 1.0
    # alpha = 0 decodes the content's own features.
    # A random decoder's outputs can be tiny, hence the tight absolute tolerances.
    padded = tf.pad(content, [[0, 0], [0, 5], [0, 3], [0, 0]], "REFLECT")
    f_c = net.encoder(padded, output_all=False)
    f_s = net.encoder(style, output_all=False)

    def render(t):
        return tf.clip_by_value(net.decoder(t)[:, :67, :101], 0.0, 1.0).numpy()

    np.testing.assert_allclose(net.stylize(content, style, alpha=0.0), render(f_c), atol=1e-5)
    t = adain_lib.adain(f_c, f_s)
    np.testing.assert_allclose(image, render(t), rtol=1e-4, atol=1e-5)
    half = net.stylize(content, style, alpha=tf.constant(0.5))
    np.testing.assert_allclose(half, render(0.5 * (f_c + t)), rtol=1e-4, atol=1e-5)
    assert np.abs(half - image).max() > 1e-3 * np.abs(image).max()


def test_adainnet_rejects_bad_inputs(net):
    with pytest.raises(ValueError, match="at least 16"):
        net(_images(1, 8, 32), _images(1, 32, 32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        net.stylize(_images(1, 32, 32) * 255.0, _images(1, 32, 32))


def test_adainnet_config_round_trip(net, tmp_path):
    config = net.get_config()
    clone = adain_lib.AdaINNet.from_config(config)
    assert clone.get_config() == config
    assert clone.upsample_filters == (256, 128, 64)
    assert clone.encoder.feature_scales == net.encoder.feature_scales
    scaled = adain_lib.AdaINNet(vgg_weights=None, vgg_feature_scales=(1.0, 2.0, 3.0, 4.0))
    assert scaled.get_config()["vgg_feature_scales"] == (1.0, 2.0, 3.0, 4.0)
    # Only the decoder trains; the VGG is frozen.
    assert len(net.trainable_weights) == 2 * 9
    path = os.path.join(tmp_path, "adain.keras")
    net.save(path)
    loaded = keras.models.load_model(path)
    content, style = _images(1, 40, 56), _images(1, 32, 32, seed=9)
    np.testing.assert_allclose(
        loaded.stylize(content, style), net.stylize(content, style), atol=1e-5
    )


def test_adain_decoder_config_and_bad_filters():
    decoder = adain_lib.AdaINDecoder((32, 16, 8))
    decoder.build((None, 4, 4, 512))
    assert decoder(tf.zeros([1, 4, 4, 512])).shape == (1, 32, 32, 3)
    clone = adain_lib.AdaINDecoder.from_config(decoder.get_config())
    assert clone.upsample_filters == (32, 16, 8)
    with pytest.raises(ValueError, match="three|3"):
        adain_lib.AdaINDecoder((32, 16))


def test_adain_losses_and_one_training_step_moves_only_the_decoder(net):
    content, style = _images(2, 32, 40), _images(2, 32, 32, seed=3)
    optimizer = keras.optimizers.Adam(1e-3)
    enc_before = [w.numpy().copy() for w in net.encoder.weights]
    dec_before = [w.numpy().copy() for w in net.decoder.weights]
    with tf.GradientTape() as tape:
        out = net(content, style, training=True)
        terms = adain_lib.adain_losses(out, content, style, net.encoder, style_weight=10.0)
    assert set(terms) == {"content", "style", "total", *(f"style/{n}" for n in FEATURE_NAMES)}
    np.testing.assert_allclose(terms["total"], terms["content"] + 10.0 * terms["style"], rtol=1e-5)
    assert all(np.isfinite(float(v)) and float(v) >= 0 for v in terms.values())
    grads = tape.gradient(terms["total"], net.trainable_weights)
    assert all(g is not None for g in grads)
    optimizer.apply_gradients(zip(grads, net.trainable_weights))
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(dec_before, net.decoder.weights))
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(enc_before, net.encoder.weights))


def test_adain_losses_rejects_mismatched_output(net):
    content, style = _images(1, 32, 32), _images(1, 32, 32)
    out = net(content, style)
    with pytest.raises(ValueError, match="does not match"):
        adain_lib.adain_losses(out, _images(1, 40, 32), style, net.encoder)


def test_adain_net_under_tf_function(net):
    @tf.function
    def step(c, s):
        out = net(c, s)
        return adain_lib.adain_losses(out, c, s, net.encoder)["total"]

    value = step(_images(2, 32, 32), _images(2, 48, 40))
    assert np.isfinite(float(value))


# ----------------------------------------------------------------------------
# Gatys et al.
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder(net):
    return net.encoder


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_gatys_lowers_its_objective(encoder, optimizer):
    content, style = _images(1, 35, 41, seed=11), _images(1, 32, 32, seed=12)
    image, history = gatys_lib.gatys_stylize(
        content, style, encoder, iterations=4, optimizer=optimizer, lr=0.01, return_losses=True
    )
    assert image.shape == (1, 35, 41, 3)
    assert float(tf.reduce_min(image)) >= 0.0 and float(tf.reduce_max(image)) <= 1.0
    assert len(history) == 4
    stylizer = gatys_lib.GatysStylizer(encoder, lr=0.01, optimizer=optimizer)
    start = stylizer.objective(content, encoder(content, output_all=False), encoder(style))
    end = stylizer.objective(image, encoder(content, output_all=False), encoder(style))
    # Starts from the content: no content loss, all style loss.
    assert float(start[1]) == pytest.approx(0.0, abs=1e-6)
    assert history[0] == pytest.approx(float(start[0]), rel=1e-4)
    assert float(end[0]) < 0.9 * float(start[0])
    assert history[-1] < history[0]


def test_gatys_stylizer_reuses_its_graph_and_validates(encoder):
    stylizer = gatys_lib.GatysStylizer(encoder, style_weight=5.0)
    content, style = _images(2, 32, 32, seed=1), _images(1, 24, 40, seed=2)
    first = stylizer.stylize(content, style, iterations=2)
    second, history = stylizer.stylize(content, style, iterations=3, return_losses=True)
    assert first.shape == second.shape == (2, 32, 32, 3)
    assert len(history) == 3
    # One trace serves both iteration counts (the count is a tensor).
    assert stylizer._adam_loop.experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match="optimizer"):
        gatys_lib.GatysStylizer(encoder, optimizer="sgd")
    with pytest.raises(ValueError, match="iterations"):
        stylizer.stylize(content, style, iterations=0)


# ----------------------------------------------------------------------------
# WCT.
# ----------------------------------------------------------------------------


def _cov(f):
    flat = tf.reshape(tf.cast(f, tf.float64), [f.shape[0], -1, f.shape[-1]])
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    return tf.matmul(centred, centred, transpose_a=True) / (flat.shape[1] - 1)


def test_wct_gives_the_style_mean_and_covariance():
    content = tf.random.normal([2, 12, 10, 6], seed=1) * 3.0 + 1.0
    mix = tf.random.normal([6, 6], seed=2)
    style = tf.matmul(tf.random.normal([1, 9, 11, 6], seed=3), mix) - 2.0
    out = wct_lib.wct(content, style, eps=1e-8)
    assert out.shape == content.shape
    np.testing.assert_allclose(
        tf.reduce_mean(out, axis=[1, 2]),
        tf.broadcast_to(tf.reduce_mean(style, axis=[1, 2]), [2, 6]),
        atol=1e-4,
    )
    np.testing.assert_allclose(_cov(out), tf.broadcast_to(_cov(style), [2, 6, 6]), atol=1e-3)
    np.testing.assert_allclose(wct_lib.wct(content, style, alpha=0.0), content, atol=1e-6)
    half = wct_lib.wct(content, style, alpha=tf.constant(0.5), eps=1e-8)
    np.testing.assert_allclose(half, 0.5 * (content + out), atol=1e-4)


def test_wct_regularisation_handles_flat_features():
    content = tf.zeros([1, 4, 4, 8])
    style = tf.random.uniform([1, 4, 4, 8], seed=4)
    assert np.all(np.isfinite(wct_lib.wct(content, style)))


def test_wct_stylizer_uses_the_adain_decoder(net):
    stylizer = wct_lib.WCTStylizer(net)
    content, style = _images(2, 67, 101, seed=3), _images(1, 40, 32, seed=4)
    image = stylizer.stylize(content, style)
    assert image.shape == (2, 67, 101, 3)
    assert float(tf.reduce_min(image)) >= 0.0 and float(tf.reduce_max(image)) <= 1.0
    np.testing.assert_allclose(
        stylizer.stylize(content, style, alpha=0.0),
        net.stylize(content, style, alpha=0.0),
        atol=1e-5,
    )


def test_adain_decoder_weights_are_checkpoint_dependencies(net, tmp_path):
    # Keras 3 does not make list-held layers tf.train.Checkpoint dependencies;
    # every decoder weight must still be in a model-only checkpoint.
    prefix = tf.train.Checkpoint(model=net).save(os.path.join(tmp_path, "ckpt"))
    saved = [n for n, _ in tf.train.list_variables(prefix) if n.startswith("model/decoder/")]
    assert len(saved) == len(net.decoder.weights) == 18


def test_adainnet_owns_its_objective(net):
    content, style = _images(2, 32, 40), _images(2, 32, 32, seed=4)
    out = net({"content": content, "style": style})
    want = adain_lib.adain_losses(out, content, style, net.encoder, style_weight=3.0)
    weighted = adain_lib.AdaINNet.from_config(dict(net.get_config(), adain_style_weight=3.0))
    weighted.build()
    weighted.set_weights(net.get_weights())
    total = weighted.compute_loss(x=(content, style), y_pred=out)
    assert float(total) == pytest.approx(float(want["total"]), rel=1e-6)
    assert {m.name for m in weighted.metrics} == set(want) - {"total"}
    assert float(weighted.metrics[0].result()) == pytest.approx(float(want["content"]), rel=1e-6)
