"""Tests for exchange_st.data.pydata: the PyDataset pipeline (PIL + NumPy, no TensorFlow)."""

import logging

import keras
import numpy as np
import pytest
from PIL import Image

from exchange_st.data import pydata
from exchange_st.data.sources import DataConfig

SHORT, CROP = 48, 32


def _cfg(content="builtin", style="builtin", **kwargs):
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("batch_size", 3)
    return DataConfig(content, style, resize_short_side=SHORT, crop_size=CROP, **kwargs)


def _rgb(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _check_batch(batch, n=3):
    assert set(batch) == {"content", "style"}
    for images in batch.values():
        assert images.dtype == np.float32 and images.shape == (n, CROP, CROP, 3)
        assert images.min() >= 0.0 and images.max() <= 1.0


def test_builtin_batches_are_a_function_of_seed_and_index():
    ds = pydata.PairDataset(_cfg())
    assert ds.num_batches is None  # Infinite: fit needs steps_per_epoch.
    first, again = ds[0], pydata.PairDataset(_cfg())[0]
    _check_batch(first)
    for key in ("content", "style"):
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.array_equal(first[key], ds[1][key])
        assert not np.array_equal(first[key], pydata.PairDataset(_cfg(seed=8))[0][key])
        # Varied images, not one pattern repeated.
        assert np.std(first[key].mean(axis=(1, 2, 3))) > 0.01
    assert not np.array_equal(first["content"], first["style"])
    # The procedural images span the patterns' colour range.
    images = np.concatenate([ds[i]["content"] for i in range(4)])
    assert images.min() < 0.1 and images.max() > 0.9


def test_threads_give_the_batches_of_one_worker():
    cfg = _cfg(workers=2)
    ds = pydata.PairDataset(cfg)
    adapter = keras.src.trainers.data_adapters.get_data_adapter(ds)
    adapter.on_epoch_begin()
    batches = [batch for _, batch in zip(range(3), adapter.get_numpy_iterator())]
    adapter.on_epoch_end()
    single = pydata.PairDataset(_cfg())
    for i, batch in enumerate(batches):
        np.testing.assert_array_equal(batch["content"], single[i]["content"])


def test_resize_short_side_and_crop():
    wide = np.random.default_rng(0).random((30, 90, 3)).astype(np.float32)
    resized = pydata.resize_short_side(wide, SHORT)
    assert resized.shape == (SHORT, 144, 3) and resized.dtype == np.float32
    tall = pydata.resize_short_side(wide.transpose(1, 0, 2), SHORT)
    assert tall.shape == (144, SHORT, 3)
    flat = np.full((100, 60, 3), 0.25, np.float32)
    np.testing.assert_allclose(pydata.resize_short_side(flat, SHORT), 0.25, atol=1e-6)
    crop = pydata.random_crop(resized, CROP, np.random.default_rng(1))
    assert crop.shape == (CROP, CROP, 3)
    # The crop is a window of the resized image.
    assert any(
        np.array_equal(resized[top : top + CROP, left : left + CROP], crop)
        for top in range(SHORT - CROP + 1)
        for left in range(144 - CROP + 1)
    )


def test_directory_source_skips_bad_files_and_applies_exif(tmp_path, caplog):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(_rgb(60, 90)).save(root / "photo.jpg")
    Image.fromarray(_rgb(400, 300, 1)).save(root / "big.jpg")  # Decoded at reduced scale.
    Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(root / "sub" / "gray16.png")
    Image.fromarray(np.zeros((40, 40, 4), np.uint8), mode="RGBA").save(root / "sub" / "a.png")
    (root / "sub" / "text.jpg").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="absl"):
        ds = pydata.PairDataset(_cfg(str(root), "builtin", batch_size=4))
    assert "text.jpg" in caplog.text
    contents = np.concatenate([ds[i]["content"] for i in range(4)])
    _check_batch({"content": contents, "style": contents}, n=16)
    # 16-bit white and transparent-on-white crops are all ones.
    assert sum(np.allclose(c, 1.0, atol=1e-3) for c in contents) >= 4

    # Stored 32x64, left half black; displayed 64x32 with the black half on top.
    exif_dir = tmp_path / "exif"
    exif_dir.mkdir()
    array = np.zeros((32, 64, 3), np.uint8)
    array[:, 32:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(array).save(exif_dir / "r.jpg", quality=100, exif=exif.tobytes())
    cfg = DataConfig("unused", "unused", resize_short_side=32, crop_size=32, seed=0)
    source = pydata.make_source(str(exif_dir), cfg, seed=0)
    for i in range(3):
        # Upright, every row is a single colour; unrotated, rows would be half black.
        assert np.abs(np.diff(source.crop(i), axis=1)).max() < 0.15


def test_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        pydata.PairDataset(_cfg(str(tmp_path / "no_such_dir")))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_text("text")
    with pytest.raises(ValueError, match="None of the 1 image files"):
        pydata.PairDataset(_cfg(str(tmp_path / "bad")))
    unchecked = pydata.PairDataset(_cfg("builtin", str(tmp_path / "bad"), validate_files=False))
    with pytest.raises(ValueError, match="failed to load"):
        unchecked[0]
    with pytest.raises(ValueError, match="TFDS sources need TensorFlow"):
        pydata.PairDataset(_cfg("tfds:places365_small"))
    with pytest.raises(ValueError, match="pipeline"):
        _cfg(pipeline="torch")
