"""The options for a style path that training cannot silence, and the report that measures it."""

import keras
import numpy as np
import pytest
from conftest import small_efanet

from exchange_st import console
from exchange_st.evaluation import style_dependence
from exchange_st.nn import covariance, style_heads
from exchange_st.nn.model import ExchangeStyleTransfer

# Brighter random-VGG features, so that a fresh small model's stages carry
# signal (as in test_model.py).
FEATURE_SCALES = (0.2, 0.2, 0.2, 0.2)


def _images(n, size, seed):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype("float32")


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def _codes(model, images):
    f_vgg = model.encoder(images, output_all=False)
    return _numpy(model.compressor(f_vgg))


def test_l2_codes_are_unit_vectors_whatever_scale_the_compressor_learns():
    images = _images(3, 48, 0)
    paper = small_efanet(vgg_feature_scales=FEATURE_SCALES)
    unit = small_efanet(vgg_feature_scales=FEATURE_SCALES, code_normalization="l2")
    np.testing.assert_allclose(np.linalg.norm(_codes(unit, images), axis=-1), 1.0, atol=1e-5)
    # The same weights (same seed): the unit code is the paper's code's direction.
    expected = _codes(paper, images)
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    np.testing.assert_allclose(_codes(unit, images), expected, atol=1e-5)
    # Shrinking the FC, the way training shrank the paper's codes, moves the
    # paper's codes and leaves the unit codes as they were.
    before = {m: _codes(m, images) for m in (paper, unit)}
    for model in (paper, unit):
        fc = model.compressor.fc
        fc.kernel.assign(fc.kernel * 0.01)
        fc.bias.assign(fc.bias * 0.01)
    np.testing.assert_allclose(_codes(paper, images), 0.01 * before[paper], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(_codes(unit, images), before[unit], atol=1e-5)


def test_code_normalization_is_checked_and_round_trips():
    with pytest.raises(ValueError, match="code_normalization"):
        ExchangeStyleTransfer(vgg_weights=None, code_normalization="rms")
    model = small_efanet(code_normalization="l2", initialization="equalized", style_statistics=True)
    config = model.get_config()
    assert config["code_normalization"] == "l2"
    assert config["initialization"] == "equalized" and config["style_statistics"] is True
    clone = ExchangeStyleTransfer.from_config(config)
    clone.build()
    clone.set_weights(model.get_weights())
    content, style = _images(1, 40, 1), _images(1, 40, 2)
    np.testing.assert_allclose(
        _numpy(clone.stylize(content, style)), _numpy(model.stylize(content, style)), atol=1e-6
    )


def _heads_outputs(heads, inputs):
    return {k: _numpy(v) for k, v in heads(inputs).items()}


def test_equalized_heads_start_as_functions_of_the_codes_at_the_paper_scales():
    code_rms, channels = 1.3, 512
    heads = style_heads.StyleHeads(channels, code_rms=code_rms, equalized=True)
    rng = np.random.default_rng(0)
    codes = [rng.normal(size=(64, 256)).astype("float32") * 0.03 for _ in range(2)]
    out = _heads_outputs(heads, codes)
    # No bias: v_c, v_r are the codes' images alone...
    for layer in (heads.fc_c, heads.fc_r):
        assert not np.any(_numpy(layer.bias))
    # ...at the scales that give R_pool unit variance and R_fusion the content
    # code's RMS (the "scaled" initialisation's), though the codes' RMS is 0.03.
    c_std, r_std = 1 / (channels**0.5 * code_rms), code_rms
    assert out["v_c"].std() == pytest.approx(c_std, rel=0.1)
    assert out["v_r"].std() == pytest.approx(r_std, rel=0.1)
    # Kernels of unit gain: Adam's steps are the same fraction of every weight.
    for layer in (heads.fc_c, heads.fc_r):
        assert _numpy(layer.kernel).std() == pytest.approx(1 / 512**0.5, rel=0.05)
    # Two independent draws: v_c and v_r are not one direction.
    corr = np.corrcoef(_numpy(heads.fc_c.kernel).ravel(), _numpy(heads.fc_r.kernel).ravel())
    assert abs(corr[0, 1]) < 0.05
    # Scale-free in their input: 100x larger codes give the same vectors.
    scaled = _heads_outputs(heads, [100 * c for c in codes])
    for key in ("v_w", "v_c", "v_r"):
        np.testing.assert_allclose(scaled[key], out[key], rtol=1e-4, atol=1e-6)


def test_scaled_heads_start_style_blind_and_equalized_heads_do_not():
    """The measurement behind the style-conditioning options: v_r_s of a fresh model across styles."""
    content, styles = _images(1, 48, 3), _images(6, 48, 4)
    ratios = {}
    for init in ("scaled", "equalized"):
        # The random VGG's own feature scale: codes of RMS ~0.08, as small
        # against the heads' biases as the ImageNet VGG's.
        model = small_efanet(initialization=init)
        report = style_dependence.style_dependence(model, content, styles)
        ratios[init] = report["v_r_s"]["ratio"]
        assert report["f_s"]["ratio"] > 0.05
    # "scaled": v_r is its bias plus a term ~1/40 of it.
    assert ratios["scaled"] < 0.01
    assert ratios["equalized"] > 10 * ratios["scaled"]


def test_head_initializations_shape_eq2_only_and_leave_adain_fusion_as_scaled():
    # configs/gpu_jax.cfg keeps --initialization=equalized beside
    # --fusion_mode=adain, so that --fusion_mode=ours alone restores it.
    content, styles = _images(1, 40, 3), _images(2, 40, 4)
    outputs = {}
    for init in ("scaled", "equalized", "scaled_kernels"):
        model = small_efanet(initialization=init, fusion_mode="adain")
        assert not model.style_heads.equalized and model.style_heads.input_rms is None
        outputs[init] = _numpy(model(np.repeat(content, 2, axis=0), styles)["s2c"])
    np.testing.assert_array_equal(outputs["equalized"], outputs["scaled"])
    np.testing.assert_array_equal(outputs["scaled_kernels"], outputs["scaled"])
    assert small_efanet(initialization="equalized").style_heads.equalized


def test_masked_moments_are_the_weighted_channel_mean_and_std():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(2, 5, 7, 4)).astype("float32") * 3 + 1
    mean, std = (_numpy(x) for x in covariance.masked_moments(features))
    np.testing.assert_allclose(mean, features.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, features.std(axis=(1, 2)), rtol=1e-4)
    mask = (rng.uniform(size=(2, 5, 7, 1)) > 0.5).astype("float32")
    mean, std = (_numpy(x) for x in covariance.masked_moments(features, mask))
    for b in range(2):
        picked = features[b][mask[b, ..., 0] > 0]
        np.testing.assert_allclose(mean[b], picked.mean(axis=0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(std[b], picked.std(axis=0), rtol=1e-4)


def test_style_statistics_reach_the_heads_and_follow_the_mask():
    model = small_efanet(vgg_feature_scales=FEATURE_SCALES, style_statistics=True)
    code_dim = model.code_dim
    assert model.style_heads.fc_r.kernel.shape == (2 * code_dim + 1024, 512)
    content, style = _images(2, 40, 6), _images(1, 40, 7)
    f_vgg_c = model.encoder(content, output_all=False)
    f_vgg_s = model.encoder(style, output_all=False)
    # One style serves a batch of contents.
    codes = model.analyze(f_vgg_c, f_vgg_s)
    assert codes["v_r_s"].shape == (2, 512)
    # With the f_x and f'_com rows of the heads at zero, v_r_s comes from the
    # statistics alone, and the style's masked-out pixels do not count.
    kernel = _numpy(model.style_heads.fc_r.kernel)
    kernel[: 2 * code_dim] = 0
    model.style_heads.fc_r.kernel.assign(kernel)
    h = f_vgg_s.shape[1]
    mask = np.zeros((1, h, h, 1), "float32")
    mask[:, : h // 2] = 1
    changed = _numpy(f_vgg_s).copy()
    changed[:, h // 2 :] *= 3.0
    with_mask = [
        _numpy(model.analyze(f_vgg_c, f, mask_s=mask)["v_r_s"]) for f in (f_vgg_s, changed)
    ]
    np.testing.assert_allclose(with_mask[0], with_mask[1], atol=1e-5)
    unmasked = _numpy(model.analyze(f_vgg_c, changed)["v_r_s"])
    assert np.abs(unmasked - with_mask[0]).max() > 1e-3


# --- the report -------------------------------------------------------------


def test_spread_is_zero_for_equal_rows_and_exact_for_a_known_spread():
    equal = np.tile(np.arange(1.0, 7.0), (4, 1))
    assert style_dependence.spread(equal)["ratio"] == 0.0
    # Rows c + d and c - d: std d everywhere, RMS sqrt(c^2 + d^2).
    c, d = 3.0, 4.0
    rows = np.array([[c + d] * 5, [c - d] * 5])
    s = style_dependence.spread(rows)
    assert s["rms"] == pytest.approx(5.0) and s["spread"] == pytest.approx(4.0)
    assert s["ratio"] == pytest.approx(0.8) and s["move"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="at least 2"):
        style_dependence.spread(rows[:1])


def test_colour_follow_tells_a_copied_palette_from_one_palette_and_from_noise():
    styles = _images(6, 12, 3) * np.linspace(0.2, 1.0, 6)[:, None, None, None]
    content = _images(1, 10, 4)

    def follow(outputs, chroma=False):
        return style_dependence.colour_follow(outputs, styles, chroma)

    # AdaIN-like: the content shifted to each style's mean colour, at half strength.
    shift = styles.mean(axis=(1, 2), keepdims=True) - content.mean(axis=(1, 2), keepdims=True)
    adain_like = content + 0.5 * shift
    assert follow(adain_like) == pytest.approx({"r": 1.0, "slope": 0.5})
    assert follow(content - 0.5 * shift) == pytest.approx({"r": -1.0, "slope": -0.5})
    # A shift too small to see follows in direction (r) but not in size (slope).
    assert follow(content + 0.01 * shift) == pytest.approx({"r": 1.0, "slope": 0.01})
    one_palette = np.repeat(content, 6, axis=0)
    assert follow(one_palette) == {"r": 0.0, "slope": 0.0}
    # Outputs that change with the style, but not towards it: |r| well below 1.
    assert abs(follow(content + 0.3 * _images(6, 10, 5))["r"]) < 0.6
    with pytest.raises(ValueError, match="at least 3 styles"):
        style_dependence.colour_follow(adain_like[:2], styles[:2])
    # In chroma only, the AdaIN-like shift still follows; a grey picture that
    # only gets lighter with the style's grey level does not.
    assert follow(adain_like, chroma=True) == pytest.approx({"r": 1.0, "slope": 0.5})
    grey = styles.mean(axis=(1, 2, 3))[:, None, None, None] * np.ones_like(one_palette)
    assert follow(grey)["r"] > 0.5
    assert follow(grey, chroma=True) == pytest.approx({"r": 0.0, "slope": 0.0}, abs=1e-9)
    # Both at once, as the reports print them.
    assert style_dependence.palette_follow(grey, styles) == {
        "colour_follow": follow(grey),
        "chroma_follow": follow(grey, chroma=True),
    }


def test_hue_headroom_is_the_share_of_the_style_loss_in_the_mean_colour():
    from exchange_st.nn.vgg import VGGEncoder

    encoder = VGGEncoder(None, feature_scales=FEATURE_SCALES)
    rng = np.random.default_rng(0)
    styles = (0.2 + 0.4 * _images(5, 24, 6)) * rng.uniform(0.5, 1.0, size=(5, 1, 1, 3))
    styles = styles.astype("float32")
    # Within [0, 1] whatever the sign: styles lie in [0.1, 0.6].
    offset = np.array([0.1, -0.05, 0.08], "float32") * rng.choice([-1, 1], size=(5, 1, 1, 1))

    def headroom(outputs):
        return style_dependence.hue_headroom(encoder, outputs, styles, batch_size=2)

    # Only the mean colour separates these outputs from their styles.
    recoloured = headroom(styles + offset)
    assert recoloured["as_is"] > 0
    assert recoloured["headroom"] == pytest.approx(1.0, abs=1e-6)
    # Outputs that already wear their styles' mean colours: nothing to gain.
    content = 0.2 * _images(1, 24, 7)  # Narrow, so no shift below clips it.
    wearing = content - content.mean(axis=(1, 2), keepdims=True)
    wearing = wearing + styles.mean(axis=(1, 2), keepdims=True)
    assert headroom(wearing)["headroom"] == pytest.approx(0.0, abs=1e-5)
    # One palette for every style leaves some of the loss in the colour.
    one_palette = headroom(np.repeat(content, 5, axis=0))
    assert 0.0 < one_palette["headroom"] < 1.0
    assert one_palette["shifted"] < one_palette["as_is"]
    with pytest.raises(ValueError, match="one output per style"):
        headroom(styles[:3])


def test_colour_probe_finds_a_colour_that_the_vectors_carry_linearly_and_no_other():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(60, 6, 6, 3)) * rng.uniform(0.2, 1.0, size=(60, 1, 1, 3))
    colour = images.mean(axis=(1, 2))
    noise = rng.normal(size=(60, 10))
    # A random mixing of the mean colour into 10 dimensions, beside noise.
    carries = np.concatenate([colour @ rng.normal(size=(3, 10)), 0.01 * noise], axis=1)
    assert style_dependence.colour_probe(carries, images) > 0.9
    assert style_dependence.colour_probe(carries, images, part="grey") > 0.9
    # Vectors of the grey level alone carry no hue.
    grey_only = np.concatenate([colour.mean(axis=1, keepdims=True), 0.01 * noise], axis=1)
    assert style_dependence.colour_probe(grey_only, images, part="grey") > 0.9
    assert style_dependence.colour_probe(grey_only, images) < 0.3
    assert style_dependence.colour_probe(noise, images) < 0.3
    with pytest.raises(ValueError, match="at least 9 images"):
        style_dependence.colour_probe(carries[:8], images[:8])
    with pytest.raises(ValueError, match="part"):
        style_dependence.colour_probe(carries, images, part="hue")


def test_colour_probe_tells_a_decoder_that_paints_the_colour_from_one_that_does_not():
    rng = np.random.default_rng(0)
    content = rng.uniform(size=(12, 8, 8, 3)) * rng.uniform(0.2, 1.0, size=(12, 1, 1, 3))
    style = rng.uniform(size=(12, 8, 8, 3)) * rng.uniform(0.2, 1.0, size=(12, 1, 1, 3))

    def fake_model(c, s):
        # v_r carries each image's mean colour, v_c noise; c2c copies the
        # content, s2c is one grey plus 5% of its style's colour.
        return {
            "v_c_c": rng.normal(size=(len(c), 6)),
            "v_c_s": rng.normal(size=(len(s), 6)),
            "v_r_c": c.mean(axis=(1, 2)),
            "v_r_s": s.mean(axis=(1, 2)),
            "c2c": c,
            "s2c": 0.5 + 0.05 * (s.mean(axis=(1, 2), keepdims=True) - 0.3) + 0 * c,
        }

    result = style_dependence.colour_report(fake_model, content, style, batch_size=5)
    for key in ("v_r_c", "v_r_s", "c2c", "s2c"):
        for part in ("chroma", "grey"):
            assert result["carried"][f"{key}/{part}"] > 0.9, (key, part)
    for key in ("v_c_c", "v_c_s"):
        assert result["carried"][f"{key}/chroma"] < 0.3, key
    for part in ("chroma", "grey"):
        assert result["painted"][f"c2c/{part}"] == pytest.approx({"r": 1.0, "slope": 1.0})
        # s2c's colour is a function of its style's (R^2 above), at 5% strength.
        assert result["painted"][f"s2c/{part}"] == pytest.approx({"r": 1.0, "slope": 0.05})
    table = style_dependence.format_colour_report(result, "fake")
    assert "c2c paints its content" in table and "1.00 (1.00)" in table


def test_report_is_zero_after_heads_that_ignore_the_style():
    model = small_efanet(vgg_feature_scales=FEATURE_SCALES)
    heads = model.style_heads
    for layer in (heads.fc_w, heads.fc_c, heads.fc_r):
        layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
    report = style_dependence.style_dependence(model, _images(1, 40, 8), _images(5, 40, 9))
    assert report["f_s"]["ratio"] > 0.05 and report["f_com"]["ratio"] > 0.01
    for stage in ("v_w_s", "v_c_s", "v_r_s", "R_fusion", "s2c"):
        assert report[stage]["ratio"] < 1e-6, stage
        assert report[stage]["rms"] > 0, stage


def test_report_of_heads_that_copy_the_style_code_equals_the_code():
    model = small_efanet(vgg_feature_scales=FEATURE_SCALES)
    code_dim = model.code_dim
    # v_r = f_x tiled to 512 channels: the f'_com rows are zero, the f_x rows
    # repeat the identity, and the bias is zero.
    kernel = np.zeros((2 * code_dim, 512), "float32")
    kernel[code_dim:] = np.tile(np.eye(code_dim, dtype="float32"), (1, 512 // code_dim))
    model.style_heads.fc_r.kernel.assign(kernel)
    model.style_heads.fc_r.bias.assign(np.zeros(512, "float32"))
    report = style_dependence.style_dependence(
        model, _images(1, 40, 10), _images(5, 40, 11), batch_size=2
    )
    assert report["v_r_s"]["ratio"] == pytest.approx(report["f_s"]["ratio"], rel=1e-4)
    assert report["v_r_s"]["rms"] == pytest.approx(report["f_s"]["rms"], rel=1e-4)
    text = style_dependence.format_report(report, "copying heads")
    assert "copying heads" in text and "v_r_s" in text and "%" in text


# --- one owner of the model's options ----------------------------------------


def test_parse_model_options_reads_json_values():
    assert console.parse_options(
        ["code_normalization=l2", "fusion_rank=4", "style_statistics=true", "filters=[8, 8]"]
    ) == {
        "code_normalization": "l2",
        "fusion_rank": 4,
        "style_statistics": True,
        "filters": [8, 8],
    }
    with pytest.raises(ValueError, match="key=value"):
        console.parse_options(["code_normalization"])


def test_fusion_offset_adds_the_style_vector_to_every_pixel():
    from exchange_st.nn.decoder import CSFusion

    rng = np.random.default_rng(0)
    f_pur = rng.normal(size=(2, 3, 4, 8)).astype("float32")
    v_c, v_r = (rng.normal(size=(2, 8)).astype("float32") for _ in range(2))
    r_pool = np.einsum("bhwc,bc->bhw", f_pur, v_c)[..., None]
    np.testing.assert_allclose(
        _numpy(CSFusion(channels=8)((f_pur, v_c, v_r))),
        r_pool * v_r[:, None, None],
        rtol=1e-5,
        atol=1e-5,
    )  # Eq. 2
    fused = _numpy(CSFusion(channels=8, offset=0.5)((f_pur, v_c, v_r)))
    np.testing.assert_allclose(fused, (r_pool + 0.5) * v_r[:, None, None], rtol=1e-5, atol=1e-5)
    # Where the content code is zero the map is the style vector itself.
    np.testing.assert_allclose(
        _numpy(CSFusion(channels=8, offset=0.5)((0 * f_pur, v_c, v_r)))[:, 1, 2],
        0.5 * v_r,
        rtol=1e-6,
    )
    # Rank k: each of the k pooled channels is offset.
    v_c4, v_r4 = (rng.normal(size=(2, 2 * 8)).astype("float32") for _ in range(2))
    pooled = np.einsum("bhwc,bkc->bhwk", f_pur, v_c4.reshape(2, 2, 8)) + 0.5
    expected = np.einsum("bhwk,bkc->bhwc", pooled, v_r4.reshape(2, 2, 8))
    np.testing.assert_allclose(
        _numpy(CSFusion(channels=8, rank=2, offset=0.5)((f_pur, v_c4, v_r4))),
        expected,
        rtol=1e-4,
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="offset needs mode 'ours'"):
        CSFusion("adain", channels=8, offset=1.0)


def test_fusion_offset_round_trips_and_defaults_to_the_paper():
    assert ExchangeStyleTransfer(vgg_weights=None).get_config()["fusion_offset"] == 0.0
    model = small_efanet(fusion_offset=1.0)
    rebuilt = ExchangeStyleTransfer.from_config(model.get_config())
    assert rebuilt.fusion_offset == 1.0 and rebuilt.decoder_c.fusion.offset == 1.0


def test_normalized_purification_removes_the_channel_statistics():
    rng = np.random.default_rng(0)
    f_vgg = rng.normal(1.0, 2.0, size=(2, 5, 6, 8)).astype("float32")
    v_w = rng.uniform(0.2, 1.0, size=(2, 8)).astype("float32")
    # Sec. 3.1 as written: channel attention only.
    np.testing.assert_allclose(_numpy(style_heads.purify(f_vgg, v_w)), f_vgg * v_w[:, None, None])
    normalized = _numpy(style_heads.purify(f_vgg, v_w, normalize=True))
    np.testing.assert_allclose(normalized.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=(1, 2)), v_w, rtol=1e-3)
    # Any per-channel affine change of the content's features (its "style")
    # leaves f_pur unchanged, so R_pool cannot carry it.
    scale = rng.uniform(0.5, 3.0, size=(2, 1, 1, 8)).astype("float32")
    shift = rng.normal(size=(2, 1, 1, 8)).astype("float32")
    moved = _numpy(style_heads.purify(f_vgg * scale + shift, v_w, normalize=True))
    np.testing.assert_allclose(moved, normalized, rtol=1e-3, atol=1e-3)


def test_purification_is_checked_round_trips_and_defaults_to_the_paper():
    assert ExchangeStyleTransfer(vgg_weights=None).get_config()["purification"] == "attention"
    with pytest.raises(ValueError, match="purification"):
        ExchangeStyleTransfer(vgg_weights=None, purification="whiten")
    model = small_efanet(purification="normalized")
    rebuilt = ExchangeStyleTransfer.from_config(model.get_config())
    assert rebuilt.purification == "normalized"
    f_vgg = np.random.default_rng(3).normal(size=(1, 4, 4, 512)).astype("float32")
    v_w = np.full((1, 512), 0.5, "float32")
    np.testing.assert_allclose(
        _numpy(model.purify(f_vgg, v_w)), _numpy(style_heads.purify(f_vgg, v_w, normalize=True))
    )
    out = model({"content": _images(2, 32, seed=1), "style": _images(2, 32, seed=2)})
    assert np.isfinite(_numpy(out["s2c"])).all()
