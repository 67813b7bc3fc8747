"""Tiled stylization: exact tiles, seamless blending, receptive fields, argument checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_efanet

from exchange_st.inference import tiling


@pytest.fixture(scope="module")
def model():
    # Boosted random-VGG features give outputs with real contrast (see
    # test_model.TEST_FEATURE_SCALES); residual blocks with non-zero
    # branches (Keras' initialisation): the halo checks need the decoder's
    # convs to see their neighbours (identity blocks would not).
    return small_efanet(
        0,
        vgg_feature_scales=(0.2, 0.2, 0.2, 0.2),
        compressor_filters=(4, 8),
        num_pre_fusion_blocks=1,
        num_post_fusion_blocks=1,
        initialization="keras",
    )


def _images(shape, seed):
    return tf.random.stateless_uniform(shape, seed=[seed, 0])


def test_receptive_radius(model):
    # VGG-19 to relu4_1: 2 convs, pool, 2 convs at stride 2, pool, 4 convs at
    # stride 4, pool, 1 conv at stride 8.
    assert tiling.receptive_radius(model.encoder.blocks) == 2 + 1 + 4 + 2 + 16 + 4 + 8
    # One post-fusion block (2 convs) and up0_in at 1/8, then 3 + 1 convs at
    # 1/4, 1 + 1 at 1/2, 1 + to_rgb at full resolution, in feature pixels.
    render = model.decoder_c.render_layers()
    assert tiling.receptive_radius(render) == 3 + 4 / 2 + 2 / 4 + 2 / 8
    with pytest.raises(TypeError):
        tiling.receptive_radius([keras.layers.Dropout(0.1)])


def test_encode_tiled_equals_encoder(model):
    images = _images([2, 96, 136, 3], 1)
    full = model.encoder(images, output_all=False).numpy()
    tiled = tiling.encode_tiled(model.encoder, images, tile=32).numpy()
    assert tiled.shape == full.shape == (2, 12, 17, 512)
    np.testing.assert_allclose(tiled, full, atol=1e-4 * np.abs(full).max())
    with pytest.raises(ValueError, match="multiples of 8"):
        tiling.encode_tiled(model.encoder, _images([1, 20, 24, 3], 2))


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_fuse_banded_equals_fused_features(model, alpha):
    content = _images([1, 120, 88, 3], 7)
    style = _images([1, 64, 64, 3], 8)
    full, _ = model.fused_features(content, style, alpha)
    f_vgg_c = model.encoder(content, output_all=False)
    codes = model.analyze(f_vgg_c, model.encoder(style, output_all=False))
    banded = tiling.fuse_banded(model, f_vgg_c, codes, alpha, rows=4)
    assert banded.shape == tuple(full.shape) == (1, 15, 11, 512)
    np.testing.assert_allclose(banded, full, atol=1e-4 * np.abs(full).max())
    # Without context rows the residual blocks see zeros at every band edge.
    rough = tiling.fuse_banded(model, f_vgg_c, codes, alpha, rows=4, halo=0)
    assert np.abs(rough - full.numpy()).max() > 1e-2 * np.abs(full).max()


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_stylize_tiled_matches_untiled(model, alpha):
    # Odd sizes: reflect padding, a partial last tile in both directions.
    content = _images([1, 150, 190, 3], 3)
    style = _images([1, 90, 77, 3], 4)
    full = model.stylize(content, style, alpha=alpha).numpy()
    tiled = tiling.stylize_tiled(model, content, style, alpha=alpha, tile=64, overlap=16)
    tiled = tiled.numpy()
    assert tiled.shape == full.shape
    assert full.std() > 0.05  # the comparison sees real image content
    np.testing.assert_allclose(tiled, full, atol=2e-4)


def test_without_halo_tiles_differ_and_blend_hides_seams(model):
    """A zero halo shows the tiling is real; the window still leaves no hard seam."""
    content = _images([1, 128, 128, 3], 5)
    style = _images([1, 64, 64, 3], 6)
    full = model.stylize(content, style).numpy()
    rough = tiling.stylize_tiled(model, content, style, tile=64, overlap=32, halo=0).numpy()
    assert np.abs(rough - full).max() > 0.05
    # Rows 60..67 straddle the tile border at 64: with the blend, neighbouring
    # rows change no more than rows inside a tile do.
    row_steps = np.abs(np.diff(rough[0, :, 8:-8], axis=0)).mean(axis=(1, 2))
    # (Without the window, overlap=0, the step at the seam is 3.3x the median.)
    assert row_steps[60:67].max() < 2 * np.median(row_steps)


def test_blend_weights_sum_to_one():
    size, tile, band = 100, 32, 8
    total = np.zeros(size)
    for a in range(0, size, tile):
        b = min(a + tile, size)
        lo, hi = max(0, a - band // 2), min(size, b + band // 2)
        total[lo:hi] += tiling._axis_weights(lo, hi, a, b, band, size)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_overlap_larger_than_tile_raises(model):
    r_fusion = tf.zeros([1, 8, 8, 512])
    with pytest.raises(ValueError, match="overlap"):
        tiling.render_tiled(model.decoder_c, r_fusion, tile=4, overlap=6)
