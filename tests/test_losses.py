"""Eq. 3-7 against explicit formulas."""

import numpy as np
import pytest
import tensorflow as tf

from exchange_st.nn import losses
from exchange_st.nn.vgg import FEATURE_NAMES, VGGEncoder


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_gram_matrix_matches_numpy():
    f = _rand(2, 3, 5, 4)
    g = losses.gram_matrix(tf.constant(f)).numpy()
    for b in range(2):
        x = f[b].reshape(-1, 4)
        np.testing.assert_allclose(g[b], x.T @ x / 15, rtol=1e-5)


def test_content_and_style_terms():
    a, b = _rand(1, 4, 4, 8), _rand(1, 4, 4, 8, seed=1)
    assert float(losses.content_loss(a, a)) == 0.0
    np.testing.assert_allclose(losses.content_loss(a, b), np.mean((a - b) ** 2), rtol=1e-5)
    feats_a = [_rand(1, 6, 6, 3, seed=i) for i in range(4)]
    feats_b = [_rand(1, 6, 6, 3, seed=10 + i) for i in range(4)]
    same = losses.style_loss(feats_a, feats_a)
    assert set(same) == set(FEATURE_NAMES) and all(float(v) == 0 for v in same.values())
    ab, ba = losses.style_loss(feats_a, feats_b), losses.style_loss(feats_b, feats_a)
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(ab[name], ba[name], rtol=1e-6)
        assert float(ab[name]) > 0
    # The Gram loss ignores where things are: a spatial shuffle costs nothing.
    shuffled = [np.roll(f, 2, axis=2) for f in feats_a]
    assert max(float(v) for v in losses.style_loss(feats_a, shuffled).values()) < 1e-6


def test_reconstruction_loss_is_mean_l1():
    a, b = _rand(2, 5, 5, 3), _rand(2, 5, 5, 3, seed=1)
    np.testing.assert_allclose(losses.reconstruction_loss(a, b), np.abs(a - b).mean(), rtol=1e-5)


def test_opponent_reconstruction_is_l1_in_a_rotated_colour_basis():
    basis = np.asarray(losses.OPPONENT_BASIS)
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-7)
    a, b = _rand(2, 5, 5, 3), _rand(2, 5, 5, 3, seed=1)
    np.testing.assert_allclose(
        losses.reconstruction_loss(a, b, "opponent"), np.abs((a - b) @ basis.T).mean(), rtol=1e-5
    )
    # A grey error of d is one axis of length sqrt(3) d: mean |d| / sqrt(3) of the 3 values.
    grey = np.full((1, 2, 2, 3), 0.3, np.float32)
    np.testing.assert_allclose(
        losses.reconstruction_loss(grey, 0 * grey, "opponent"), 0.3 / 3**0.5, rtol=1e-5
    )
    with pytest.raises(ValueError, match="reconstruction_space"):
        losses.LossConfig(reconstruction_space="lab")
    assert losses.LossConfig().reconstruction_space == "rgb"


def test_opponent_reconstruction_keeps_the_hue_gradient_under_a_larger_grey_error():
    # A pixel far too bright and a little too red: in RGB the grey error sets the
    # sign of all three channels, and the gradient has no colour part at all.
    target = tf.zeros([1, 1, 1, 3])
    image = tf.constant([[[[0.5 + 0.02, 0.5 - 0.02, 0.5]]]])
    chroma = np.asarray(losses.OPPONENT_BASIS)[1:]
    for space, has_colour in (("rgb", False), ("opponent", True)):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = losses.reconstruction_loss(image, target, space)
        colour_part = chroma @ tape.gradient(loss, image).numpy().reshape(3)
        assert (np.abs(colour_part).max() > 0.1) == has_colour, (space, colour_part)


def _codes(seed=0):
    names = ("f_com", "f_uni_c", "f_uni_s", "f_c", "f_s", "f_c_rec", "f_s_rec")
    return {n: tf.constant(_rand(3, 16, seed=seed + i)) for i, n in enumerate(names)}


@pytest.mark.parametrize("mode", ["abs", "square", "raw"])
def test_exchange_loss_eq6(mode):
    c = {k: v.numpy() for k, v in _codes().items()}
    out = losses.exchange_loss(_codes(), mode)
    dots = [np.sum(c["f_com"] * c[k], axis=-1) for k in ("f_uni_c", "f_uni_s")]
    transform = {"abs": np.abs, "square": np.square, "raw": lambda x: x}[mode]
    orth = sum(transform(d).mean() for d in dots)
    rec = (
        np.abs(c["f_c"] - c["f_c_rec"]).sum(-1).mean()
        + np.abs(c["f_s"] - c["f_s_rec"]).sum(-1).mean()
    )
    np.testing.assert_allclose(out["orthogonality"], orth, rtol=1e-5)
    np.testing.assert_allclose(out["reconstruction"], rec, rtol=1e-5)
    np.testing.assert_allclose(out["total"], orth + rec, rtol=1e-5)
    if mode != "raw":
        assert float(out["orthogonality"]) >= 0


def test_orthogonal_codes_cost_nothing_in_orthogonality():
    codes = _codes()
    e = np.eye(16, dtype=np.float32)
    codes["f_com"] = tf.constant(np.tile(e[0], (3, 1)))
    codes["f_uni_c"] = tf.constant(np.tile(e[1], (3, 1)))
    codes["f_uni_s"] = tf.constant(np.tile(e[2], (3, 1)))
    assert float(losses.exchange_loss(codes)["orthogonality"]) == 0.0


@pytest.mark.parametrize("targets", ["trainable", "fixed"])
def test_fixed_exchange_targets_stop_only_the_gradient_at_f_c_f_s(targets):
    codes = _codes()
    with tf.GradientTape() as tape:
        tape.watch(list(codes.values()))
        out = losses.exchange_loss(codes, targets=targets)
    grads = dict(zip(codes, tape.gradient(out["total"], list(codes.values()))))
    reference = losses.exchange_loss(_codes())
    np.testing.assert_allclose(out["total"], reference["total"], rtol=1e-6)  # same value
    for name in ("f_c", "f_s"):
        stopped = grads[name] is None or not np.any(grads[name].numpy())
        assert stopped == (targets == "fixed"), name
    for name in ("f_c_rec", "f_s_rec", "f_com", "f_uni_c"):
        assert np.any(grads[name].numpy()), name


def test_loss_config_rejects_unknown_exchange_targets():
    with pytest.raises(ValueError, match="exchange_targets"):
        losses.LossConfig(exchange_targets="frozen")
    assert losses.LossConfig().exchange_targets == "trainable"


def test_loss_config_rejects_unknown_orthogonality():
    with pytest.raises(ValueError, match="orthogonality"):
        losses.LossConfig(orthogonality="cosine")


def test_total_is_eq7_weighted_sum():
    encoder = VGGEncoder(None)
    content = tf.random.stateless_uniform([2, 32, 40, 3], seed=[1, 2])
    style = tf.random.stateless_uniform([2, 48, 32, 3], seed=[3, 4])
    outputs = dict(_codes())
    outputs = {k: v[:2] for k, v in outputs.items()}
    outputs.update(
        s2c=tf.reverse(content, [1]),
        c2c=content * 0.5,
        c2s=tf.reverse(style, [2]),
        s2s=style,
        feats_c=encoder(content),
        feats_s=encoder(style),
    )
    config = losses.LossConfig(content_weight=1.5, style_weight=0.5, rec_weight=3, com_weight=0.25)
    terms = losses.compute_losses(outputs, content, style, encoder, config)
    expected = (
        1.5 * terms["content"] + 0.5 * terms["style"] + 3 * terms["rec"] + 0.25 * terms["com"]
    )
    np.testing.assert_allclose(terms["total"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        terms["style"], sum(terms[f"style/{n}"] for n in FEATURE_NAMES), rtol=1e-5
    )
    # s2s == style: only the c2c half of Eq. 5 remains.
    np.testing.assert_allclose(terms["rec"], np.abs(content.numpy() * 0.5).mean(), rtol=1e-5)


def test_default_weights_are_the_papers():
    c = losses.LossConfig()
    assert (c.content_weight, c.style_weight, c.rec_weight, c.com_weight) == (1, 2, 5, 7)


def test_perfect_outputs_have_zero_perceptual_and_rec_loss():
    encoder = VGGEncoder(None)
    image = tf.random.stateless_uniform([1, 32, 32, 3], seed=[5, 6])
    outputs = {k: v[:1] for k, v in _codes().items()}
    outputs.update(
        s2c=image,
        c2c=image,
        c2s=image,
        s2s=image,
        feats_c=encoder(image),
        feats_s=encoder(image),
    )
    terms = losses.compute_losses(outputs, image, image, encoder)
    for key in ("content", "style", "rec"):
        assert float(terms[key]) == pytest.approx(0.0, abs=1e-6)


def test_rms_perceptual_norm_is_the_root_of_each_mean():
    a, b = _rand(2, 4, 4, 8), _rand(2, 4, 4, 8, seed=1)
    np.testing.assert_allclose(
        losses.content_loss(a, b, squared=False),
        np.sqrt(losses.content_loss(a, b)),
        rtol=1e-5,
    )
    feats_a = [_rand(1, 8, 8, 4, seed=2), _rand(1, 4, 4, 6, seed=3)]
    feats_b = [_rand(1, 8, 8, 4, seed=4), _rand(1, 4, 4, 6, seed=5)]
    squared = losses.style_loss(feats_a, feats_b)
    rooted = losses.style_loss(feats_a, feats_b, squared=False)
    for name in squared:
        np.testing.assert_allclose(rooted[name], np.sqrt(squared[name]), rtol=1e-5)
    with pytest.raises(ValueError, match="perceptual_norm"):
        losses.LossConfig(perceptual_norm="l1")
    assert losses.LossConfig().perceptual_norm == "squared"


def _gram_np(f):
    x = f.reshape(f.shape[0], -1, f.shape[-1]).astype(np.float64)
    return np.einsum("bpi,bpj->bij", x, x) / x.shape[1]


def test_eq3_and_eq4_pair_each_output_with_its_own_targets():
    """Content != style: each term against its definition, computed here in NumPy.

    Eq. 3: E(I_s->c) against E(I_c) and E(I_c->s) against E(I_s) at relu4_1;
    Eq. 4: the Gram matrices of I_s->c against I_s's and of I_c->s against
    I_c's, layer by layer. A swap of the content and style features, or of
    s2c and c2s, changes every one of these numbers.
    """
    encoder = VGGEncoder(None)
    rng = np.random.default_rng(7)
    content, style, s2c, c2s = (
        tf.constant(rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)) for _ in range(4)
    )
    outputs = {k: v[:2] for k, v in _codes().items()}
    outputs.update(
        s2c=s2c, c2s=c2s, c2c=content, s2s=style, feats_c=encoder(content), feats_s=encoder(style)
    )
    terms = losses.compute_losses(outputs, content, style, encoder)
    e = {
        name: [f.numpy().astype(np.float64) for f in encoder(x)]
        for name, x in (("c", content), ("s", style), ("s2c", s2c), ("c2s", c2s))
    }
    expected_content = np.mean((e["s2c"][-1] - e["c"][-1]) ** 2) + np.mean(
        (e["c2s"][-1] - e["s"][-1]) ** 2
    )
    np.testing.assert_allclose(terms["content"], expected_content, rtol=1e-4)
    for i, name in enumerate(FEATURE_NAMES):
        expected = np.mean((_gram_np(e["s2c"][i]) - _gram_np(e["s"][i])) ** 2) + np.mean(
            (_gram_np(e["c2s"][i]) - _gram_np(e["c"][i])) ** 2
        )
        np.testing.assert_allclose(terms[f"style/{name}"], expected, rtol=1e-4)
