"""Equations and serialisation of the covariance code, Feature Exchange blocks and style heads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from exchange_st.nn import decoder
from exchange_st.nn import covariance, exchange, style_heads


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_covariance_matches_numpy():
    f = _rand(2, 5, 7, 6)
    cov = covariance.masked_covariance(tf.constant(f)).numpy()
    for b in range(2):
        x = f[b].reshape(-1, 6)
        np.testing.assert_allclose(cov[b], np.cov(x, rowvar=False, bias=True), atol=1e-5)


def test_masked_covariance_uses_only_masked_pixels():
    f = _rand(1, 4, 6, 5, seed=1)
    mask = np.zeros((1, 4, 6, 1), np.float32)
    mask[:, 1:3, 2:5] = 1.0
    cov = covariance.masked_covariance(tf.constant(f), tf.constant(mask)).numpy()[0]
    selected = f[0, 1:3, 2:5].reshape(-1, 5)
    np.testing.assert_allclose(cov, np.cov(selected, rowvar=False, bias=True), atol=1e-5)


def test_compressor_shape_and_mask_invariance():
    comp = covariance.CovarianceCompressor(code_dim=16, filters=(4, 4))
    f = _rand(2, 6, 6, 32, seed=2)
    mask = np.ones((2, 6, 6, 1), np.float32)
    mask[:, :, 3:] = 0.0
    changed = f.copy()
    changed[:, :, 3:] += 5.0  # Only unmasked pixels change.
    a = comp(tf.constant(f), tf.constant(mask))
    b = comp(tf.constant(changed), tf.constant(mask))
    assert a.shape == (2, 16)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def _conv_rms(compressor, features):
    x = covariance.masked_covariance(tf.constant(features))[..., None]
    rms = []
    for conv in compressor.convs:
        x = conv(x)
        rms.append(float(tf.sqrt(tf.reduce_mean(tf.square(x)))))
    return rms


def test_he_compressor_keeps_its_activation_scale():
    # Why "he_normal" exists (docs/experiments/trainability.md): Glorot kernels
    # shrink the ReLU stack's activations layer by layer, so the last conv
    # of the paper-sized compressor ends small enough for Adam's lr-sized
    # bias steps to silence it.
    features = np.abs(_rand(2, 8, 8, 64, seed=5))
    rms = {}
    for init in ("glorot_uniform", "he_normal"):
        keras.utils.set_random_seed(0)
        comp = covariance.CovarianceCompressor(16, (32, 64, 128, 128, 64), kernel_initializer=init)
        comp(tf.constant(features))
        rms[init] = _conv_rms(comp, features)
    glorot, he = rms["glorot_uniform"], rms["he_normal"]
    assert glorot[-1] < glorot[0] / 3
    assert he[0] / 2 < he[-1] < he[0] * 2
    assert he[-1] > 10 * glorot[-1]


def test_residual_message_passing_equations():
    rmp = exchange.ResidualMessagePassing(units=8, gate_bias_init=-1.0)
    a, b = tf.constant(_rand(3, 8, seed=3)), tf.constant(_rand(3, 8, seed=4))
    r_a, r_b = rmp((a, b))

    def dense(layer, x):
        return x @ layer.kernel.numpy() + layer.bias.numpy()

    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    m = np.maximum(dense(rmp.w1, a.numpy()), 0) + np.maximum(dense(rmp.w2, b.numpy()), 0)
    np.testing.assert_allclose(r_a.numpy(), sig(dense(rmp.w3, m)) * m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r_b.numpy(), sig(dense(rmp.w4, m)) * m, rtol=1e-5, atol=1e-6)
    # Four 256x256-style weights (here 8x8), as Fig. 4b.
    assert [tuple(w.kernel.shape) for w in (rmp.w1, rmp.w2, rmp.w3, rmp.w4)] == [(8, 8)] * 4


def test_exchange_block_wiring():
    block = exchange.FeatureExchangeBlock(units=8, gate_bias_init=0.0)
    f_com, f_c, f_s = (tf.constant(_rand(2, 8, seed=i)) for i in (5, 6, 7))
    out_com, out_c, out_s = block((f_com, f_c, f_s))
    r_c, r_com_c = block.rmp_c((f_c, f_com))
    r_com_s, r_s = block.rmp_s((f_com, f_s))
    np.testing.assert_allclose(out_com, f_com + r_com_c + r_com_s, atol=1e-6)
    np.testing.assert_allclose(out_c, f_c + r_c, atol=1e-6)
    np.testing.assert_allclose(out_s, f_s + r_s, atol=1e-6)


def test_exchange_blocks_at_init_are_nearly_identity():
    """Sec. 3.2: blocks chain "without breaking its initial behavior"."""
    f = [tf.constant(_rand(4, 256, seed=i)) for i in (8, 9, 10)]
    x = f
    for i in range(3):
        y = exchange.FeatureExchangeBlock(256, name=f"b{i}")(x)
        for before, after in zip(x, y):
            # f_com takes two gated residuals per block, each ~sigmoid(-5).
            assert np.linalg.norm(after - before) / np.linalg.norm(before) < 0.06
        x = y
    for before, after in zip(f, x):
        assert np.linalg.norm(after - before) / np.linalg.norm(before) < 0.15
    # The gates are what keeps them quiet: opened gates change the features.
    opened = exchange.FeatureExchangeBlock(256, gate_bias_init=5.0)(f)
    assert np.linalg.norm(opened[0] - f[0]) / np.linalg.norm(f[0]) > 0.3


def test_csfusion_ours_is_rank_one_eq1_eq2():
    f = _rand(2, 3, 5, 16, seed=11)
    v_c, v_r = _rand(2, 16, seed=12), _rand(2, 16, seed=13)
    out = decoder.CSFusion("ours", channels=16)((tf.constant(f), v_c, v_r)).numpy()
    for b in range(2):
        f_n = f[b].reshape(-1, 16)  # [N, 512] in the paper
        r_pool = f_n @ v_c[b].reshape(16, 1)  # Eq. 1: [N, 1]
        r_fusion = r_pool @ v_r[b].reshape(1, 16)  # Eq. 2: [N, 512]
        np.testing.assert_allclose(out[b].reshape(-1, 16), r_fusion, rtol=1e-4, atol=1e-4)
        assert np.linalg.matrix_rank(out[b].reshape(-1, 16), tol=1e-3) == 1


@pytest.mark.parametrize("rank", [2, 3])
def test_csfusion_rank_k_sums_k_projections(rank):
    f = _rand(2, 3, 5, 16, seed=11)
    v_c, v_r = _rand(2, rank * 16, seed=12), _rand(2, rank * 16, seed=13)
    out = decoder.CSFusion("ours", channels=16, rank=rank)((tf.constant(f), v_c, v_r)).numpy()
    for b in range(2):
        f_n = f[b].reshape(-1, 16)
        cols = v_c[b].reshape(rank, 16).T  # [512, k]
        rows = v_r[b].reshape(rank, 16)  # [k, 512]
        np.testing.assert_allclose(out[b].reshape(-1, 16), f_n @ cols @ rows, rtol=1e-4, atol=1e-4)
        assert np.linalg.matrix_rank(out[b].reshape(-1, 16), tol=1e-3) == rank


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_csfusion_rank_two_with_its_second_projection_zeroed_is_eq1_eq2(offset):
    """The einsum path of rank k > 1 against the paper's rank-1 path (Eq. 1-2, its own code)."""
    f = tf.constant(_rand(2, 3, 5, 16, seed=11))
    v_c, v_r = _rand(2, 2 * 16, seed=12), _rand(2, 2 * 16, seed=13)
    v_r[:, 16:] = 0.0  # the second expansion row: its pooled column reaches nothing
    rank_two = decoder.CSFusion("ours", 16, rank=2, offset=offset)((f, v_c, v_r)).numpy()
    rank_one = decoder.CSFusion("ours", 16, offset=offset)((f, v_c[:, :16], v_r[:, :16])).numpy()
    np.testing.assert_allclose(rank_two, rank_one, rtol=1e-5, atol=1e-6)
    # With the row back, the second projection adds its own rank-1 term.
    v_r[:, 16:] = _rand(2, 16, seed=14)
    assert not np.allclose(decoder.CSFusion("ours", 16, rank=2)((f, v_c, v_r)).numpy(), rank_one)


def test_csfusion_rank_needs_ours_mode():
    with pytest.raises(ValueError, match="rank"):
        decoder.CSFusion("adain", rank=2)
    with pytest.raises(ValueError, match="fusion_rank"):
        style_heads.StyleHeads(8, fusion_rank=0)


def test_csfusion_adain_mode_sets_mean_and_std():
    f = _rand(1, 6, 6, 8, seed=14) * 3 + 1
    v_c, v_r = _rand(1, 8, seed=15), np.abs(_rand(1, 8, seed=16)) + 0.5
    out = decoder.CSFusion("adain", channels=8)((tf.constant(f), v_c, v_r)).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), v_c, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2)), v_r, rtol=1e-3)


def test_csfusion_concat_equals_conv_over_tiled_concatenation():
    fusion = decoder.CSFusion("concat", channels=4)
    f = _rand(1, 3, 3, 4, seed=17)
    v_c, v_r = _rand(1, 4, seed=18), _rand(1, 4, seed=19)
    out = fusion((tf.constant(f), v_c, v_r)).numpy()
    tiled = np.concatenate(
        [
            f,
            np.broadcast_to(v_c[:, None, None], f.shape),
            np.broadcast_to(v_r[:, None, None], f.shape),
        ],
        axis=-1,
    )
    kernel = np.concatenate([fusion.mix_content.kernel.numpy(), fusion.mix_style.kernel.numpy()])
    expected = tiled @ kernel + fusion.mix_content.bias.numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_csfusion_rejects_unknown_mode():
    with pytest.raises(ValueError, match="fusion mode"):
        decoder.CSFusion("sum")


def test_purification_multiplies_channels():
    f = _rand(2, 3, 4, 6, seed=20)
    v_w = np.abs(_rand(2, 6, seed=21))
    out = style_heads.purify(tf.constant(f), tf.constant(v_w)).numpy()
    np.testing.assert_allclose(out, f * v_w[:, None, None, :], rtol=1e-6)


def test_style_heads_ranges():
    heads = style_heads.StyleHeads(channels=12)
    out = heads((tf.constant(_rand(3, 5)), tf.constant(_rand(3, 5, seed=1))))
    assert set(out) == {"v_w", "v_c", "v_r"}
    assert all(v.shape == (3, 12) for v in out.values())
    assert np.all((out["v_w"].numpy() > 0) & (out["v_w"].numpy() < 1))


@pytest.mark.parametrize("input_rms", [None, 0.04])
def test_style_heads_start_at_the_projection_scales(input_rms):
    """`code_rms` sets v_c ~ 1/(sqrt(C) code_rms) and v_r ~ code_rms, in the biases or kernels."""
    channels, code_rms = 256, 1.3
    heads = style_heads.StyleHeads(channels, code_rms=code_rms, input_rms=input_rms)
    rng = np.random.default_rng(0)
    codes = [tf.constant(0.04 * rng.standard_normal((64, 128)), tf.float32) for _ in range(2)]
    out = {k: v.numpy() for k, v in heads(codes).items()}
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    # Bias-driven, v_c also carries the Glorot kernel's code part (as large as
    # its bias), so the scales are checked on the biases there.
    v_c, v_r = (
        (out["v_c"], out["v_r"])
        if input_rms
        else (heads.fc_c.bias.numpy(), heads.fc_r.bias.numpy())
    )
    assert rms(v_c) == pytest.approx(1 / (channels**0.5 * code_rms), rel=0.15)
    assert rms(v_r) == pytest.approx(code_rms, rel=0.15)
    # Across inputs: v_r is a constant vector (bias-driven) or a function of the codes.
    between = out["v_r"].std(axis=0).mean() / rms(out["v_r"])
    if input_rms is None:
        assert between < 0.05
    else:
        assert between > 0.8
        assert not np.any(heads.fc_r.bias.numpy()) and not np.any(heads.fc_c.bias.numpy())


def test_zero_kernel_heads_start_independent_of_the_codes_and_learn_from_them():
    heads = style_heads.StyleHeads(32, code_rms=1.3, zero_kernels=True)
    a = [tf.constant(_rand(4, 8, seed=s)) for s in (30, 31)]
    b = [tf.constant(_rand(4, 8, seed=s)) for s in (32, 33)]
    out_a, out_b = heads(a), heads(b)
    for name in ("v_w", "v_c", "v_r"):
        np.testing.assert_array_equal(out_a[name].numpy(), out_b[name].numpy())
        # Every row is the same vector: the head's bias alone.
        assert np.ptp(out_a[name].numpy(), axis=0).max() == 0.0
    np.testing.assert_allclose(out_a["v_w"].numpy(), 0.5)
    assert np.std(out_a["v_r"].numpy()) == pytest.approx(1.3, rel=0.3)
    # The kernels still get the gradient that makes them depend on the codes.
    with tf.GradientTape() as tape:
        loss = sum(tf.reduce_sum(tf.square(v)) for v in heads(a).values())
    grads = tape.gradient(loss, [heads.fc_w.kernel, heads.fc_c.kernel, heads.fc_r.kernel])
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    with pytest.raises(ValueError, match="zero_kernels"):
        style_heads.StyleHeads(8, code_rms=1.3, input_rms=0.04, zero_kernels=True)


def test_style_heads_input_rms_needs_code_rms():
    with pytest.raises(ValueError, match="input_rms needs code_rms"):
        style_heads.StyleHeads(8, input_rms=0.05)


@pytest.mark.parametrize("mode", ["ours", "adain", "concat"])
def test_decoder_upsamples_by_eight(mode):
    dec = decoder.Decoder(channels=16, fusion_mode=mode, upsample_filters=(8, 8, 4))
    out = dec((tf.constant(_rand(2, 3, 5, 16)), _rand(2, 16), _rand(2, 16, seed=3)))
    assert out.shape == (2, 24, 40, 3)
    assert len(dec.pre_blocks) == 3 and len(dec.post_blocks) == 2


def _layer_cases():
    f4 = _rand(2, 4, 4, 32)
    vec = _rand(2, 8)
    return [
        (covariance.CovarianceCompressor(8, (4, 4)), (f4,)),
        (covariance.CovarianceCompressor(8, (4, 4), kernel_initializer="he_normal"), (f4,)),
        (exchange.ResidualMessagePassing(8), ((vec, vec * 2),)),
        (exchange.FeatureExchangeBlock(8), ((vec, vec * 2, vec * 3),)),
        (style_heads.StyleHeads(32), ((vec, vec),)),
        (style_heads.StyleHeads(16, fusion_rank=2), ((vec, vec),)),
        (style_heads.StyleHeads(16, code_rms=1.3, input_rms=0.04), ((vec, vec),)),
        (style_heads.StyleHeads(16, code_rms=1.3, zero_kernels=True), ((vec, vec),)),
        (decoder.CSFusion("concat", 32), ((f4, _rand(2, 32), _rand(2, 32)),)),
        (decoder.CSFusion("ours", 32, rank=2), ((f4, _rand(2, 64), _rand(2, 64)),)),
        (decoder.ResidualBlock(32), (f4,)),
        (
            decoder.Decoder(32, fusion_mode="adain", upsample_filters=(8, 8, 4)),
            ((f4, _rand(2, 32), _rand(2, 32)),),
        ),
        (decoder.Upsampler((8, 8, 4), output_bias=(0.5, 0.4, 0.3)), (f4,)),
    ]


@pytest.mark.parametrize("index", range(13))
def test_layer_config_round_trip(index):
    layer, args = _layer_cases()[index]
    expected = layer(*args)
    clone = layer.__class__.from_config(layer.get_config())
    clone(*args)
    clone.set_weights(layer.get_weights())
    got = clone(*args)
    # Also through Keras' own (de)serialisation registry.
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is type(layer)
    assert clone.get_config() == layer.get_config()
    tf.nest.map_structure(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), expected, got
    )


def _saved_paths(model, path):
    import h5py

    model.save_weights(path)
    names = []
    with h5py.File(path, "r") as f:
        f.visit(
            lambda n: (
                names.append(n[: -len("/vars")]) if n.endswith("/vars") and len(f[n]) else None
            )
        )
    return names


def test_shared_upsampler_keeps_the_weights_file_layout(tmp_path):
    """Weights files written before the upsampler was shared still load: same paths."""
    from exchange_st.baselines.adain import AdaINNet
    from exchange_st.nn.model import ExchangeStyleTransfer

    efanet = ExchangeStyleTransfer(
        vgg_weights=None,
        code_dim=8,
        compressor_filters=(4,),
        num_exchange_blocks=1,
        num_pre_fusion_blocks=1,
        num_post_fusion_blocks=1,
        upsample_filters=(8, 8, 8),
    )
    efanet.build()
    paths = [p for p in _saved_paths(efanet, tmp_path / "e.weights.h5") if "decoder_c" in p]
    # UpSampling2D (indices 1, 6, 9) has no variables.
    ups = [f"decoder_c/up_layer_{i}" for i in (0, 10, 2, 3, 4, 5, 7, 8)]
    assert paths == [
        "decoder_c/post_block_0/conv1",
        "decoder_c/post_block_0/conv2",
        "decoder_c/pre_block_0/conv1",
        "decoder_c/pre_block_0/conv2",
        "decoder_c/to_rgb",
        *ups,
    ]
    assert efanet.decoder_c.up_layers[0] is efanet.decoder_c.upsampler.up0_in
    adain = AdaINNet(vgg_weights=None, upsample_filters=(8, 8, 8))
    adain.build()
    paths = [p for p in _saved_paths(adain, tmp_path / "a.weights.h5") if "decoder" in p]
    assert paths == [
        "decoder/to_rgb",
        "decoder/up0_conv0",
        "decoder/up0_conv1",
        "decoder/up0_conv2",
        "decoder/up0_in",
        "decoder/up1_conv0",
        "decoder/up1_in",
        "decoder/up2_conv0",
        "decoder/up2_in",
    ]
