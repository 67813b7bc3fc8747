"""The full network: shapes at odd sizes, Eq. 8, masks, gradients, saving, input checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from exchange_st.nn import losses
from exchange_st.nn.blending import blend_styles
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import tf_checks

# Eq. 1-2 multiply two vectors derived from a covariance, so a fresh model's
# output scales like a high power of the feature size; boosting the random
# VGG's features gives outputs ~0.2 so that the comparisons below compare
# real signal rather than numbers near 1e-4.
TEST_FEATURE_SCALES = (0.2, 0.2, 0.2, 0.2)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    m = ExchangeStyleTransfer(vgg_weights=None, vgg_feature_scales=TEST_FEATURE_SCALES)
    m.build()
    return m


def _images(shape, seed):
    return tf.random.stateless_uniform(shape, seed=[seed, 0])


IMAGE_KEYS = ("s2c", "c2c", "c2s", "s2s")


def test_odd_sizes_and_batch(model):
    content = _images([2, 67, 101, 3], 1)
    style = _images([2, 128, 90, 3], 2)
    out = model(content, style)
    assert out["s2c"].shape == (2, 67, 101, 3)
    assert out["c2c"].shape == (2, 67, 101, 3)
    assert out["c2s"].shape == (2, 128, 90, 3)
    assert out["s2s"].shape == (2, 128, 90, 3)
    for key in ("f_c", "f_s", "f_com", "f_uni_c", "f_uni_s", "f_c_rec", "f_s_rec"):
        assert out[key].shape == (2, 256)
    for key in ("v_w_c", "v_c_c", "v_r_c", "v_w_s", "v_c_s", "v_r_s"):
        assert out[key].shape == (2, 512)
    # The batch is processed per example: the first pair alone gives the same.
    single = model(content[:1], style[:1])
    np.testing.assert_allclose(single["s2c"], out["s2c"][:1], atol=1e-4)
    assert not np.allclose(out["s2c"][0], out["s2c"][1])


def test_paper_architecture_counts(model):
    assert len(model.exchange_blocks) == 3
    assert model.code_dim == 256
    for decoder in (model.decoder_c, model.decoder_s):
        assert len(decoder.pre_blocks) == 3 and len(decoder.post_blocks) == 2
        # Sec. 3.5: three nearest-neighbour upsamplings, each followed by a conv; no
        # learned (transposed) upsampling.
        ups = [layer for layer in decoder.up_layers if "UpSampling" in type(layer).__name__]
        assert len(ups) == 3
        assert all(
            type(layer) is keras.layers.UpSampling2D and layer.interpolation == "nearest"
            for layer in ups
        )
        assert not any(
            isinstance(layer, keras.layers.Conv2DTranspose) for layer in decoder.up_layers
        )
    assert model.decoder_c is not model.decoder_s
    block_vars = {id(v) for v in model.exchange_blocks[0].trainable_variables}
    assert block_vars.isdisjoint({id(v) for v in model.exchange_blocks[1].trainable_variables})


def test_stylize_eq8_endpoints_and_linearity(model):
    content = _images([1, 48, 56, 3], 3)
    style = _images([1, 40, 64, 3], 4)
    out = model(content, style)
    np.testing.assert_allclose(
        model.stylize(content, style, alpha=1.0), tf.clip_by_value(out["s2c"], 0, 1), atol=1e-5
    )
    np.testing.assert_allclose(
        model.stylize(content, style, alpha=0.0), tf.clip_by_value(out["c2c"], 0, 1), atol=1e-5
    )
    # Eq. 8 is linear in feature space: R(0.5) is the midpoint of R(0) and R(1).
    r0, _ = model.fused_features(content, style, 0.0)
    r1, _ = model.fused_features(content, style, 1.0)
    r_half, _ = model.fused_features(content, style, tf.constant(0.5))
    np.testing.assert_allclose(r_half, 0.5 * (r0 + r1), rtol=1e-4, atol=1e-4)


def test_one_style_for_a_batch_of_contents(model):
    content = _images([3, 32, 40, 3], 5)
    style = _images([1, 48, 48, 3], 6)
    batched = model.stylize(content, style)
    assert batched.shape == (3, 32, 40, 3)
    np.testing.assert_allclose(batched[1:2], model.stylize(content[1:2], style), atol=1e-5)
    assert float(tf.reduce_min(batched)) >= 0.0 and float(tf.reduce_max(batched)) <= 1.0


def test_masks(model):
    content = _images([1, 40, 48, 3], 7)
    style = _images([1, 64, 160, 3], 8)
    plain = model.stylize(content, style)
    ones = model.stylize(
        content, style, content_mask=tf.ones([1, 40, 48]), style_mask=tf.ones([64, 160])
    )
    np.testing.assert_allclose(plain, ones, atol=1e-5)

    # Style pixels outside the style mask, farther than VGG's relu4_1
    # receptive field (44 px), cannot influence the result.
    style_mask = np.zeros([1, 64, 160], np.float32)
    style_mask[:, :, :48] = 1.0
    changed = style.numpy()
    changed[:, :, 96:] = 1.0 - changed[:, :, 96:]
    a = model.stylize(content, style, style_mask=style_mask)
    b = model.stylize(content, changed, style_mask=style_mask)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(a - plain).max() > 1e-3  # ...while the mask itself matters.

    # Outside the content mask the content keeps its reconstruction path.
    zeros = tf.zeros([1, 40, 48])
    np.testing.assert_allclose(
        model.stylize(content, style, alpha=1.0, content_mask=zeros),
        model.stylize(content, style, alpha=0.0, content_mask=zeros),
        atol=1e-5,
    )


def test_stylize_regions(model):
    content = _images([1, 32, 48, 3], 9)
    styles = [_images([1, 32, 32, 3], 10), _images([1, 32, 32, 3], 11)]
    left = np.zeros([32, 48], np.float32)
    left[:, :24] = 1
    out = model.stylize_regions(content, styles, [left, 1 - left])
    assert out.shape == (1, 32, 48, 3)
    # One region covering everything is plain stylization.
    full = model.stylize_regions(content, styles[:1], [np.ones([32, 48], np.float32)])
    np.testing.assert_allclose(full, model.stylize(content, styles[0]), atol=1e-5)
    with pytest.raises(ValueError, match="one content mask per style"):
        model.stylize_regions(content, styles, [left])


def test_style_interpolation_blends_r_fusion(model):
    content = _images([1, 32, 40, 3], 12)
    styles = [_images([1, 32, 32, 3], 13), _images([1, 40, 32, 3], 14)]

    def blend(weights, alpha=1.0):
        return blend_styles(
            model.fused_features, model.render_content, content, styles, alpha, weights
        )

    # A weight of 0 drops a style; weights are normalised.
    np.testing.assert_allclose(blend([1, 0]), model.stylize(content, styles[0]), atol=1e-5)
    np.testing.assert_allclose(blend([7, 3]), blend([0.7, 0.3]), atol=1e-6)
    # What is blended is R_fusion (Eq. 8's quantity), rendered once.
    r = [model.fused_features(content, s, 0.5)[0] for s in styles]
    want = model.render_content(0.7 * r[0] + 0.3 * r[1], content)
    np.testing.assert_allclose(blend([0.7, 0.3], alpha=0.5), want, atol=1e-5)
    mixed = blend([0.5, 0.5]).numpy()
    for style in styles:
        assert np.abs(mixed - model.stylize(content, style).numpy()).max() > 1e-3
    for bad, match in (([1.0], "one weight per style"), ([1.0, -1.0], "weights must be >= 0")):
        with pytest.raises(ValueError, match=match):
            blend(bad)


def test_gradients_reach_every_trainable_variable_and_not_vgg(model):
    content = _images([2, 32, 32, 3], 12)
    style = _images([2, 32, 32, 3], 13)
    vgg_ids = {id(v) for v in model.encoder.weights}
    assert vgg_ids and vgg_ids.isdisjoint({id(v) for v in model.trainable_variables})
    with tf.GradientTape() as tape:
        out = model(content, style, training=True)
        total = losses.compute_losses(out, content, style, model.encoder)["total"]
    grads = tape.gradient(total, model.trainable_variables + model.encoder.weights)
    n = len(model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads[:n]) if g is None]
    assert not missing
    zero = [v.path for v, g in zip(model.trainable_variables, grads[:n]) if not np.any(g.numpy())]
    # Zero-initialised residual branches (initialization="scaled") pass no
    # gradient to their first conv until the second one has moved; every
    # other variable gets one at once.
    assert zero and all("_res" in p and "/conv1/" in p for p in zero), zero
    # VGG weights are constants of the graph for the optimiser: no gradient is
    # requested for them by training, and they are not trainable.
    assert all(not v.trainable for v in model.encoder.weights)


def test_keras_initialization_sends_gradient_to_every_variable():
    m = ExchangeStyleTransfer(
        vgg_weights=None, vgg_feature_scales=TEST_FEATURE_SCALES, initialization="keras"
    )
    content, style = _images([2, 32, 32, 3], 12), _images([2, 32, 32, 3], 13)
    with tf.GradientTape() as tape:
        total = losses.compute_losses(m(content, style), content, style, m.encoder)["total"]
    grads = tape.gradient(total, m.trainable_variables)
    assert all(g is not None and np.any(g.numpy()) for g in grads)
    assert not np.any(m.decoder_c.to_rgb.bias.numpy())


@pytest.mark.parametrize(
    "kwargs, distinct_blocks",
    [
        ({"fusion_mode": "adain"}, 3),
        ({"fusion_mode": "concat"}, 3),
        ({"num_exchange_blocks": 0}, 0),
        ({"num_exchange_blocks": 3, "share_exchange_block": True}, 1),
        ({"fusion_rank": 4}, 3),
    ],
)
def test_ablation_variants(kwargs, distinct_blocks):
    m = ExchangeStyleTransfer(vgg_weights=None, **kwargs)
    out = m(_images([1, 32, 32, 3], 14), _images([1, 32, 32, 3], 15))
    assert out["s2c"].shape == (1, 32, 32, 3)
    assert len(m.exchange_blocks) == distinct_blocks
    assert len(m.exchange_block_sequence()) == kwargs.get("num_exchange_blocks", 3)
    assert out["v_c_s"].shape == (1, 512 * kwargs.get("fusion_rank", 1))


def test_he_compressor_option_round_trips_and_scales_the_heads():
    m = ExchangeStyleTransfer(
        vgg_weights=None,
        vgg_feature_scales=TEST_FEATURE_SCALES,
        compressor_initializer="he_normal",
        initialization="scaled_kernels",
    )
    m.build()
    assert m.get_config()["compressor_initializer"] == "he_normal"
    clone = ExchangeStyleTransfer.from_config(m.get_config())
    clone.build()
    conv = clone.compressor.convs[0].kernel_initializer
    assert isinstance(conv, keras.initializers.HeNormal)
    # scaled_kernels divides the heads' kernels by the fresh codes' RMS, which
    # He kernels raise ~30x: the heads must know which compressor they read.
    assert (
        m.style_heads.input_rms
        > 10
        * ExchangeStyleTransfer(
            vgg_weights=None, initialization="scaled_kernels"
        ).style_heads.input_rms
    )


def test_unmeasured_compressor_initializer_with_scaled_kernels_is_refused():
    with pytest.raises(ValueError, match="compressor_initializer"):
        ExchangeStyleTransfer(
            vgg_weights=None, compressor_initializer="lecun_normal", initialization="scaled_kernels"
        )


def test_keras_save_round_trip(model, tmp_path):
    content = _images([1, 40, 40, 3], 16)
    style = _images([1, 32, 48, 3], 17)
    expected = model(content, style)
    path = tmp_path / "efanet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, ExchangeStyleTransfer)
    got = loaded(content, style)
    for key in IMAGE_KEYS + ("f_com", "f_c_rec"):
        np.testing.assert_allclose(expected[key], got[key], atol=1e-6)
    assert loaded.get_config() == model.get_config()


def test_model_from_config_has_same_architecture(model):
    clone = ExchangeStyleTransfer.from_config(model.get_config())
    clone.build()
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in model.weights]


@pytest.mark.parametrize(
    "content, match",
    [
        (np.zeros([32, 32, 3], np.float32), "rank 4"),
        (np.zeros([1, 32, 32, 4], np.float32), "3 \\(RGB\\) channels"),
        (np.full([1, 32, 32, 3], 255.0, np.float32), "\\[0, 1\\]"),
        (np.zeros([1, 32, 32, 3], np.uint8), "float32"),
        (np.zeros([1, 8, 32, 3], np.float32), "at least 16"),
    ],
)
def test_bad_input_raises_clear_value_error(model, content, match):
    style = np.zeros([1, 32, 32, 3], np.float32)
    with pytest.raises(ValueError, match=match):
        model(content, style)
    with pytest.raises(ValueError, match=match):
        model.stylize(content, style)


def test_bad_masks_and_batches(model):
    image = np.zeros([1, 32, 32, 3], np.float32)
    with pytest.raises(ValueError, match="does not match"):
        model.stylize(image, image, content_mask=np.ones([1, 16, 32], np.float32))
    with pytest.raises(ValueError, match="style_mask"):
        model.stylize(image, image, style_mask=np.ones([1, 32, 32, 2], np.float32))
    with pytest.raises(ValueError, match="pair up"):
        model(np.zeros([2, 32, 32, 3], np.float32), image)


def test_constructor_rejects_bad_options():
    with pytest.raises(ValueError, match="fusion_mode"):
        ExchangeStyleTransfer(vgg_weights=None, fusion_mode="add")
    with pytest.raises(ValueError, match="num_exchange_blocks"):
        ExchangeStyleTransfer(vgg_weights=None, num_exchange_blocks=-1)


def test_graph_mode_range_check(model):
    # Traced values are symbolic: the backend-neutral model cannot check
    # them, the TF edge (tf_checks, used by the SavedModel and training
    # steps) asserts them in the graph.
    def stylize(c, s):
        c = tf_checks.check_images(c, "content")
        return model.stylize(c, tf_checks.check_images(s, "style"))

    fn = tf.function(stylize)
    good = np.zeros([1, 32, 32, 3], np.float32)
    assert fn(good, good).shape == (1, 32, 32, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="\\[0, 1\\]"):
        fn(good + 200.0, good)
    unchecked = tf.function(lambda c, s: model.stylize(c, s))
    assert unchecked(good + 200.0, good).shape == (1, 32, 32, 3)


def test_graph_mode_size_and_mask_checks(model):
    any_size = tf.TensorSpec([None, None, None, 3], tf.float32)
    mask_spec = tf.TensorSpec([None, None, None], tf.float32)

    @tf.function(input_signature=[any_size, mask_spec])
    def stylize(image, mask):
        image = tf_checks.check_images(image, "content")
        mask = tf_checks.check_mask(mask, image, "content_mask")
        return model.stylize(image, image, content_mask=mask)

    good = np.zeros([1, 32, 40, 3], np.float32)
    assert stylize(good, np.ones([1, 32, 40], np.float32)).shape == (1, 32, 40, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 16"):
        stylize(good[:, :8], np.ones([1, 8, 40], np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must match its image"):
        stylize(good, np.ones([1, 32, 32], np.float32))


def test_tf_checkpoint_holds_every_variable(model, tmp_path):
    """Training checkpoints must restore the whole model, list-held layers too."""
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    saved = [n for n in tf.train.list_variables(path) if n[0].startswith("model/")]
    assert len(saved) == len(model.weights)
    keras.utils.set_random_seed(99)
    other = ExchangeStyleTransfer(vgg_weights=None)
    other.build()
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    image = _images([1, 32, 32, 3], 18)
    np.testing.assert_allclose(model.stylize(image, image), other.stylize(image, image), atol=1e-6)
    # The config reports the restored scales, not the constructor's.
    assert other.get_config()["vgg_feature_scales"] == pytest.approx(TEST_FEATURE_SCALES)


def test_the_model_owns_its_objective(model):
    content = _images([2, 32, 32, 3], 20)
    style = _images([2, 32, 32, 3], 21)
    # fit passes one batch: a dict (or a tuple) as the first argument.
    direct = model(content, style)
    for batch in ({"content": content, "style": style}, (content, style)):
        np.testing.assert_array_equal(model(batch)["s2c"], direct["s2c"])
    weighted = ExchangeStyleTransfer.from_config(
        dict(model.get_config(), style_weight=3.0, orthogonality="square", perceptual_norm="rms")
    )
    weighted.build()
    weighted.set_weights(model.get_weights())
    assert weighted.get_config()["style_weight"] == 3.0
    config = losses.LossConfig(style_weight=3.0, orthogonality="square", perceptual_norm="rms")
    want = losses.compute_losses(direct, content, style, model.encoder, config)
    for m in weighted.metrics:
        m.reset_state()
    total = weighted.compute_loss(x={"content": content, "style": style}, y_pred=direct)
    assert float(total) == pytest.approx(float(want["total"]), rel=1e-6)
    # Every term but the total (Keras' own `loss`) is a Mean metric of fit's logs.
    names = [m.name for m in weighted.metrics]
    assert set(names) == set(want) - {"total"}
    for m in weighted.metrics:
        assert float(m.result()) == pytest.approx(float(want[m.name]), rel=1e-6), m.name
    # Without y_pred the model runs itself.
    assert float(weighted.compute_loss(x=(content, style))) == pytest.approx(float(total), rel=1e-5)
    with pytest.raises(ValueError, match="orthogonality"):
        ExchangeStyleTransfer(vgg_weights=None, orthogonality="cubic")
    with pytest.raises(ValueError, match="no style"):
        model(content)
