"""The fixed VGG-19 encoder: levels, preprocessing, weights sources and their errors."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from exchange_st.nn import vgg


def test_levels_shapes_and_frozen():
    encoder = vgg.VGGEncoder(None)
    feats = encoder(tf.zeros([2, 40, 56, 3]))
    assert [tuple(f.shape) for f in feats] == [
        (2, 40, 56, 64),
        (2, 20, 28, 128),
        (2, 10, 14, 256),
        (2, 5, 7, 512),
    ]
    assert not encoder.trainable_weights
    # conv1_1..conv4_1 only: 9 convs (kernel + bias each) and the scales.
    assert len(encoder.weights) == 2 * 9 + 1
    images = tf.random.stateless_uniform([1, 40, 56, 3], seed=[0, 1])
    np.testing.assert_allclose(encoder(images, output_all=False), encoder(images)[-1])


def test_matches_keras_vgg19_with_caffe_preprocessing():
    keras.utils.set_random_seed(3)
    encoder = vgg.VGGEncoder(None, feature_scales=(1.0, 1.0, 1.0, 1.0))
    reference = keras.applications.VGG19(include_top=False, weights=None)
    for layer in encoder.blocks:
        if isinstance(layer, keras.layers.Conv2D):
            reference.get_layer(layer.name).set_weights(layer.get_weights())
    images = tf.random.stateless_uniform([1, 32, 32, 3], seed=[1, 1])
    ref = keras.Model(reference.input, [reference.get_layer(n).output for n in vgg.VGG_LAYERS])(
        keras.applications.vgg19.preprocess_input(images.numpy() * 255.0)
    )
    for got, want in zip(encoder(images), ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_feature_scales_divide_levels():
    keras.utils.set_random_seed(4)
    plain = vgg.VGGEncoder(None, feature_scales=(1.0, 1.0, 1.0, 1.0))
    scaled = vgg.VGGEncoder.from_config(
        dict(plain.get_config(), feature_scales=(2.0, 4.0, 8.0, 16.0))
    )
    for src, dst in zip(plain.blocks, scaled.blocks):
        dst.set_weights(src.get_weights())
    images = tf.random.stateless_uniform([1, 24, 24, 3], seed=[2, 2])
    for p, s, k in zip(plain(images), scaled(images), (2, 4, 8, 16)):
        np.testing.assert_allclose(p / k, s, rtol=1e-5)
    with pytest.raises(ValueError, match="4 values"):
        vgg.VGGEncoder(None, feature_scales=(1.0,))


def test_random_weights_give_unit_mean_features():
    feats = vgg.VGGEncoder(None)(tf.random.stateless_uniform([2, 64, 64, 3], seed=[7, 7]))
    for f in feats:
        assert 0.5 < float(tf.reduce_mean(f)) < 2.0


def test_weights_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        vgg.VGGEncoder(str(tmp_path / "missing.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_text("not an h5 file")
    with pytest.raises(ValueError, match="notop"):
        vgg.VGGEncoder(str(bad))


def _write_truncated_h5(path, encoder, dtype, skip=()):
    """Writes `encoder`'s layers in the legacy Keras h5 layout, as a truncated VGG file."""
    layers = [layer for layer in encoder.blocks if layer.name not in skip]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"input_layer"] + [x.name.encode() for x in layers])
        f.create_group("input_layer").attrs["weight_names"] = np.array([], "S1")
        for layer in layers:
            group = f.create_group(layer.name)
            weights = layer.get_weights()
            names = [f"{layer.name}/{w}:0" for w in ("kernel", "bias")][: len(weights)]
            group.attrs["weight_names"] = np.array([n.encode() for n in names], "S")
            for name, value in zip(names, weights):
                group.create_dataset(name, data=value.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_truncated_h5_loads_by_layer_name(tmp_path, dtype):
    keras.utils.set_random_seed(5)
    source = vgg.VGGEncoder(None)
    path = tmp_path / "vgg19_to_relu4_1.h5"
    _write_truncated_h5(path, source, dtype)
    keras.utils.set_random_seed(6)
    loaded = vgg.VGGEncoder(str(path))
    convs = [(a, b) for a, b in zip(source.blocks, loaded.blocks) if a.get_weights()]
    assert [a.name for a, _ in convs][-1] == "block4_conv1" and len(convs) == 9
    for a, b in convs:
        for want, got in zip(a.get_weights(), b.get_weights()):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want.astype(dtype).astype(np.float32))
    assert loaded.feature_scales == pytest.approx(vgg.FEATURE_SCALES)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_written_weights_file_rebuilds_the_encoder(tmp_path, dtype):
    keras.utils.set_random_seed(7)
    source = vgg.VGGEncoder(None)
    path = tmp_path / "written.h5"
    vgg.write_truncated_weights(source, path, dtype)
    loaded = vgg.VGGEncoder(str(path))
    convs = [(a, b) for a, b in zip(source.blocks, loaded.blocks) if a.get_weights()]
    assert len(convs) == 9
    for a, b in convs:
        for want, got in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(got, want.astype(dtype).astype(np.float32))


def test_truncated_h5_missing_layer_names_file_and_layer(tmp_path):
    path = tmp_path / "vgg_no_block3_conv2.h5"
    _write_truncated_h5(path, vgg.VGGEncoder(None), np.float16, skip=("block3_conv2",))
    with pytest.raises(ValueError, match="vgg_no_block3_conv2.h5' has no layer 'block3_conv2'"):
        vgg.VGGEncoder(str(path))


def test_failed_download_names_the_flag(monkeypatch):
    def offline(*args, **kwargs):
        if kwargs.get("weights") == "imagenet":
            raise OSError("URL fetch failure: Name or service not known")
        return real(*args, **kwargs)

    real = keras.applications.VGG19
    monkeypatch.setattr(keras.applications, "VGG19", offline)
    with pytest.raises(ConnectionError, match="--vgg_weights"):
        vgg.VGGEncoder("imagenet")


def test_config_does_not_refer_to_weights_source():
    config = vgg.VGGEncoder(None).get_config()
    assert config["vgg_weights"] is None
    assert tuple(config["feature_scales"]) == pytest.approx(vgg.RANDOM_FEATURE_SCALES)
