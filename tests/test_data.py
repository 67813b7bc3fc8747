"""Tests for exchange_st.data.pipeline (tiny images, resize 48 / crop 32)."""

import logging

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from exchange_st.data import image_io, pipeline, sources, tf_decode

SHORT, CROP = 48, 32


def _cfg(content="builtin", style="builtin", **kwargs):
    kwargs.setdefault("seed", 7)
    return sources.DataConfig(content, style, resize_short_side=SHORT, crop_size=CROP, **kwargs)


def _rgb(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _truncated_jpeg(path):
    Image.fromarray(_rgb(64, 64)).save(path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def _check_crops(images, n=None):
    images = np.stack([np.asarray(i) for i in images])
    if n is not None:
        assert len(images) == n
    assert images.dtype == np.float32
    assert images.shape[1:] == (CROP, CROP, 3)
    assert images.min() >= 0.0 and images.max() <= 1.0
    return images


@pytest.fixture
def messy_dir(tmp_path):
    """Readable images of many kinds plus two corrupt files, in nested folders."""
    root = tmp_path / "images"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_rgb(60, 90)).save(root / "photo.jpg")
    Image.fromarray(_rgb(1, 1)).save(root / "one_pixel.png")
    Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(root / "sub" / "gray16.png")
    rgba = np.zeros((40, 40, 4), np.uint8)  # Fully transparent black -> white.
    Image.fromarray(rgba, mode="RGBA").save(root / "sub" / "rgba.png")
    Image.fromarray(_rgb(30, 50)[..., 0], mode="L").save(root / "sub" / "deeper" / "gray.JPG")
    Image.fromarray(_rgb(30, 50)).save(root / "sub" / "deeper" / "w.webp")
    Image.fromarray(_rgb(30, 50)).save(root / "sub" / "b.bmp")
    _truncated_jpeg(root / "truncated.jpg")
    (root / "sub" / "notes.jpg").write_text("this is not a JPEG")
    return root


def test_resize_short_side_keeps_aspect_ratio():
    for (h, w), expected in [
        ((100, 50), (96, 48)),
        ((50, 100), (48, 96)),
        ((1, 1), (48, 48)),
        ((300, 200), (72, 48)),
        ((48, 48), (48, 48)),
    ]:
        out = pipeline.resize_short_side(tf.random.uniform([h, w, 3]), SHORT)
        assert tuple(out.shape) == expected + (3,)
        assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0


def test_decode_image_matches_load_image(tmp_path):
    # 16-bit, alpha, palette and gray files decoded by TF and by PIL agree.
    Image.fromarray(np.array([[0, 65535], [32896, 1000]], np.uint16)).save(tmp_path / "g16.png")
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.webp", lossless=True)
    Image.fromarray(rgba[..., :2], mode="LA").save(tmp_path / "la.png")
    Image.fromarray(_rgb(5, 7)).convert("P").save(tmp_path / "p.png", transparency=3)
    Image.fromarray(_rgb(5, 7)).save(tmp_path / "x.bmp")
    for path in sorted(tmp_path.iterdir()):
        decoded = tf_decode.decode_image(tf.io.read_file(str(path))).numpy()
        np.testing.assert_allclose(decoded, image_io.load_image(path), atol=1e-5, err_msg=path.name)
    g16 = tf_decode.decode_image(tf.io.read_file(str(tmp_path / "g16.png"))).numpy()
    assert g16[0, 1, 0] == 1.0 and abs(g16[1, 0, 0] - 32896 / 65535) < 1e-6


def test_decode_image_jpeg_dct_scaling(tmp_path):
    Image.fromarray(_rgb(200, 300)).save(tmp_path / "big.jpg")
    contents = tf.io.read_file(str(tmp_path / "big.jpg"))
    assert tf_decode.decode_image(contents).shape == (200, 300, 3)
    # 200 // 4 = 50 >= 48 but 200 // 8 < 48: decoded at quarter scale.
    assert tf_decode.decode_image(contents, min_short_side=SHORT).shape == (50, 75, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_exif_orientation_matches_pil(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(_rgb(2, 3)).save(path, exif=exif.tobytes())
    decoded = tf_decode.decode_image(tf.io.read_file(str(path)))
    oriented = tf_decode.apply_exif_orientation(decoded, tf.constant(orientation))
    np.testing.assert_allclose(oriented.numpy(), image_io.load_image(path), atol=1e-6)


def test_scan_image_files_reports_bad_files(messy_dir, caplog):
    files = image_io.list_images(messy_dir)
    assert len(files) == 9  # Subdirectories are searched.
    with caplog.at_level(logging.WARNING):
        good, bad = sources.scan_image_files(files)
    assert sorted(p.split("/")[-1] for p in bad) == ["notes.jpg", "truncated.jpg"]
    assert len(good) == 7 and not set(good) & set(bad)
    assert "Skipping 2 of 9" in caplog.text and "notes.jpg" in caplog.text


def test_sources_are_checked_before_training_and_refused_without_skip_unreadable(
    messy_dir, tmp_path
):
    (messy_dir / "empty.png").write_bytes(b"")
    cfg = sources.DataConfig(str(messy_dir), "builtin", resize_short_side=32, crop_size=32)
    sources.check_sources(cfg)  # Skips and lists (the default).
    strict = sources.DataConfig(
        str(messy_dir), "builtin", resize_short_side=32, crop_size=32, skip_unreadable=False
    )
    with pytest.raises(image_io.ImageReadError, match="3 of the 10 image files") as error:
        sources.check_sources(strict)
    message = str(error.value)
    assert "notes.jpg is not an image file" in message and "empty.png is empty" in message
    assert "truncated.jpg is damaged or incomplete" in message
    with pytest.raises(NotADirectoryError, match="is a file"):
        sources.check_sources(sources.DataConfig(str(messy_dir / "photo.jpg"), "builtin", 32, 32))


def test_a_directory_is_checked_and_its_skips_listed_once_until_it_changes(messy_dir, caplog):
    """A run builds its input several times (batches, sample grid): one skip list, not four."""
    with caplog.at_level(logging.WARNING):
        first = sources.list_directory(str(messy_dir), validate=True)
        second = sources.list_directory(str(messy_dir), validate=True)
    assert first == second and len(first[0]) == 7
    assert caplog.text.count("Skipping 2 of 9") == 1
    caplog.clear()
    (messy_dir / "late.txt.jpg").write_text("added after the first check")
    with caplog.at_level(logging.WARNING):
        third = sources.list_directory(str(messy_dir), validate=True)
    assert len(third[0]) == 7 and "Skipping 3 of 10" in caplog.text


@pytest.mark.parametrize("validate_files", [True, False])
def test_directory_dataset_skips_bad_files(messy_dir, validate_files):
    # Without the PIL scan the runtime ignore_errors still drops bad files.
    cfg = _cfg(validate_files=validate_files)
    ds = pipeline.make_image_dataset(str(messy_dir), cfg, seed=1)
    assert ds.element_spec.shape == (CROP, CROP, 3)
    crops = _check_crops(ds.take(21), n=21)  # Three epochs of 7 readable files.
    # The 16-bit all-white and the transparent (-> white) PNGs both give 1.0.
    assert np.sum(np.all(crops == 1.0, axis=(1, 2, 3))) == 6


def test_directory_dataset_visits_every_file_each_epoch(tmp_path):
    for i, color in enumerate([0, 120, 255]):
        Image.fromarray(np.full((40, 60, 3), color, np.uint8)).save(tmp_path / f"{i}.png")
    ds = pipeline.make_image_dataset(str(tmp_path), _cfg(), seed=3)
    means = [round(float(tf.reduce_mean(x)) * 255) for x in ds.take(12)]
    for epoch in range(4):
        assert sorted(means[3 * epoch : 3 * epoch + 3]) == [0, 120, 255]
    again = [
        round(float(tf.reduce_mean(x)) * 255)
        for x in pipeline.make_image_dataset(str(tmp_path), _cfg(), seed=3).take(12)
    ]
    assert means == again  # Seeded -> reproducible order.


def test_directory_dataset_applies_exif_orientation(tmp_path):
    # Stored 32x64, left half black; displayed 64x32 with the black half on top.
    array = np.zeros((32, 64, 3), np.uint8)
    array[:, 32:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(array).save(tmp_path / "r.jpg", quality=100, exif=exif.tobytes())
    cfg = sources.DataConfig("unused", "unused", resize_short_side=32, crop_size=32, seed=0)
    for crop in pipeline.make_image_dataset(str(tmp_path), cfg, seed=0).take(3):
        # Upright, every row is a single colour; unrotated, rows would be half black.
        assert np.abs(np.diff(crop.numpy(), axis=1)).max() < 0.15


def test_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        pipeline.make_image_dataset(str(tmp_path / "no_such_dir"), _cfg(), seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        pipeline.make_image_dataset(str(tmp_path / "empty"), _cfg(), seed=0)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_text("text")
    with pytest.raises(ValueError, match="None of the 1 image files"):
        pipeline.make_image_dataset(str(tmp_path / "bad"), _cfg(), seed=0)
    # All-bad data that slips past the scan ends the stream instead of hanging.
    ds = pipeline.make_image_dataset(str(tmp_path / "bad"), _cfg(validate_files=False), seed=0)
    assert list(ds.take(2)) == []
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="Unknown image source"):
        pipeline.make_image_dataset(str(tmp_path / "file.txt"), _cfg(), seed=0)


def test_config_validation():
    with pytest.raises(ValueError, match="crop_size"):
        sources.DataConfig("builtin", "builtin", resize_short_side=32, crop_size=64)
    with pytest.raises(ValueError, match="batch_size"):
        sources.DataConfig("builtin", "builtin", batch_size=0)


def test_builtin_is_deterministic_and_streams_differ():
    first = next(iter(pipeline.make_pair_dataset(_cfg(seed=11))))
    second = next(iter(pipeline.make_pair_dataset(_cfg(seed=11))))
    other = next(iter(pipeline.make_pair_dataset(_cfg(seed=12))))
    for key in ("content", "style"):
        np.testing.assert_array_equal(first[key].numpy(), second[key].numpy())
        assert not np.allclose(first[key].numpy(), other[key].numpy())
    assert not np.allclose(first["content"].numpy(), first["style"].numpy())
    _check_crops(first["content"], n=4)
    # Images within a batch differ and are not flat.
    content = first["content"].numpy()
    assert np.abs(content[0] - content[1]).mean() > 0.01
    assert content.std(axis=(1, 2)).mean() > 0.01


def test_builtin_image_is_pure_function_of_seed():
    a = pipeline.builtin_image(tf.constant([1, 2], tf.int64), 16)
    b = pipeline.builtin_image(tf.constant([1, 2], tf.int64), 16)
    assert a.shape == (16, 16, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_pair_dataset_batches_and_batch_override(messy_dir):
    cfg = _cfg(content=str(messy_dir), style="builtin", batch_size=3)
    ds = pipeline.make_pair_dataset(cfg)
    assert ds.element_spec["content"].shape == (3, CROP, CROP, 3)
    batches = list(ds.take(3))
    for batch in batches:
        assert set(batch) == {"content", "style"}
        _check_crops(batch["content"], n=3)
        _check_crops(batch["style"], n=3)
    assert pipeline.make_pair_dataset(cfg, batch_size=2).element_spec["style"].shape == (
        2,
        CROP,
        CROP,
        3,
    )


def test_pair_dataset_with_input_context(messy_dir):
    cfg = _cfg(content=str(messy_dir), style="builtin", batch_size=4)
    contexts = [tf.distribute.InputContext(2, i, 2) for i in range(2)]
    shards = [pipeline.make_pair_dataset(cfg, input_context=ctx) for ctx in contexts]
    batches = [next(iter(ds)) for ds in shards]
    for batch in batches:  # Per-replica batch = 4 / 2.
        assert batch["content"].shape == (2, CROP, CROP, 3)
    # Each pipeline has its own seeds.
    assert not np.allclose(batches[0]["style"].numpy(), batches[1]["style"].numpy())


@pytest.mark.parametrize("source", ["tfds:mnist", "tfds:cifar10:test"])
def test_tfds_source_with_mock_data(source):
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = pipeline.make_pair_dataset(_cfg(content=source, style="builtin", batch_size=2))
        batches = list(ds.take(4))  # More than 6 examples: the source repeats.
    for batch in batches:
        content = _check_crops(batch["content"], n=2)
    if source == "tfds:mnist":  # Grayscale replicated to RGB.
        np.testing.assert_array_equal(content[..., 0], content[..., 2])


def test_tfds_source_errors():
    with pytest.raises(ValueError, match="name"):
        pipeline.make_image_dataset("tfds:", _cfg(), seed=0)
