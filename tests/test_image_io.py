"""Tests for exchange_st.data.image_io."""

import logging
import os
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from exchange_st.data import image_io


def _rgb(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _save_exif_rotated_jpeg(path, orientation=6):
    # Stored 32x64 (H x W): left half black, right half white.
    array = np.zeros((32, 64, 3), np.uint8)
    array[:, 32:] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, quality=100, exif=exif.tobytes())


class TestLoadImage:
    def test_rgb_png_roundtrip(self, tmp_path):
        array = _rgb(5, 7)
        Image.fromarray(array).save(tmp_path / "a.png")
        image = image_io.load_image(tmp_path / "a.png")
        assert image.dtype == np.float32 and image.shape == (5, 7, 3)
        np.testing.assert_allclose(image, array / 255.0, atol=1e-6)

    def test_16bit_png_is_scaled_not_clipped(self, tmp_path):
        array = np.array([[0, 65535], [32896, 1000]], np.uint16)
        Image.fromarray(array).save(tmp_path / "g16.png")
        assert Image.open(tmp_path / "g16.png").mode.startswith("I")
        image = image_io.load_image(tmp_path / "g16.png")
        assert image.shape == (2, 2, 3)
        np.testing.assert_allclose(image[..., 0], array / 65535.0, atol=1e-6)
        np.testing.assert_array_equal(image[..., 0], image[..., 2])

    def test_float_tiff(self, tmp_path):
        array = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
        Image.fromarray(array, mode="F").save(tmp_path / "f.tiff")
        image = image_io.load_image(tmp_path / "f.tiff")
        np.testing.assert_allclose(image[..., 1], array, atol=1e-6)

    def test_grayscale(self, tmp_path):
        array = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
        Image.fromarray(array, mode="L").save(tmp_path / "g.png")
        image = image_io.load_image(tmp_path / "g.png")
        assert image.shape == (3, 4, 3)
        np.testing.assert_allclose(image[..., 1], array / 255.0, atol=1e-6)

    def test_rgba_composited_on_white(self, tmp_path):
        array = np.zeros((1, 3, 4), np.uint8)  # Black pixels...
        array[0, :, 3] = [0, 255, 128]  # ...transparent, opaque, half.
        Image.fromarray(array, mode="RGBA").save(tmp_path / "a.png")
        image = image_io.load_image(tmp_path / "a.png")
        np.testing.assert_allclose(image[0, :, 0], [1.0, 0.0, 1 - 128 / 255], atol=1e-6)

    def test_gray_alpha_and_palette_transparency(self, tmp_path):
        la = np.zeros((2, 2, 2), np.uint8)
        la[..., 1] = [[0, 255], [255, 255]]
        Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
        np.testing.assert_allclose(
            image_io.load_image(tmp_path / "la.png")[..., 0], [[1, 0], [0, 0]]
        )

        palette = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
        palette.putpalette([255, 0, 0, 0, 0, 255])
        palette.save(tmp_path / "p.png", transparency=0)
        np.testing.assert_allclose(
            image_io.load_image(tmp_path / "p.png")[0], [[1, 1, 1], [0, 0, 1]]
        )
        palette.save(tmp_path / "p_opaque.png")
        np.testing.assert_allclose(
            image_io.load_image(tmp_path / "p_opaque.png")[0], [[1, 0, 0], [0, 0, 1]]
        )

    def test_cmyk_jpeg(self, tmp_path):
        Image.new("CMYK", (4, 3), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
        image = image_io.load_image(tmp_path / "c.jpg")
        assert image.shape == (3, 4, 3)
        np.testing.assert_allclose(image[1, 1], [1, 0, 0], atol=0.05)  # Red.

    def test_exif_orientation_swaps_height_and_width(self, tmp_path):
        _save_exif_rotated_jpeg(tmp_path / "r.jpg", orientation=6)
        image = image_io.load_image(tmp_path / "r.jpg")
        assert image.shape == (64, 32, 3)
        # Rotated 90 degrees clockwise for display: the left (black) half is on top.
        assert image[:28].mean() < 0.05 and image[36:].mean() > 0.95

    def test_one_pixel(self, tmp_path):
        Image.fromarray(_rgb(1, 1)).save(tmp_path / "p.png")
        assert image_io.load_image(tmp_path / "p.png").shape == (1, 1, 3)

    @pytest.mark.parametrize("ext", ["png", "jpg"])
    def test_max_size_bounds_longer_side(self, tmp_path, ext):
        Image.fromarray(_rgb(100, 200)).save(tmp_path / f"a.{ext}")
        image = image_io.load_image(tmp_path / f"a.{ext}", max_size=50)
        assert image.shape == (25, 50, 3)
        assert image.min() >= 0.0 and image.max() <= 1.0
        # Smaller images are not upscaled.
        assert image_io.load_image(tmp_path / f"a.{ext}", max_size=500).shape == (
            100,
            200,
            3,
        )

    def test_truncated_jpeg_raises_with_file_name(self, tmp_path):
        Image.fromarray(_rgb(64, 64)).save(tmp_path / "t.jpg")
        data = (tmp_path / "t.jpg").read_bytes()
        (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
        with pytest.raises(image_io.ImageReadError, match="t.jpg"):
            image_io.load_image(tmp_path / "t.jpg")

    def test_text_file_raises_oserror(self, tmp_path):
        (tmp_path / "notes.jpg").write_text("not an image")
        with pytest.raises(OSError, match="notes.jpg") as info:
            image_io.load_image(tmp_path / "notes.jpg")
        assert isinstance(info.value, image_io.ImageReadError)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="missing.png"):
            image_io.load_image(tmp_path / "missing.png")

    def test_errors_name_the_role_and_say_what_is_wrong_in_plain_words(self, tmp_path):
        (tmp_path / "empty.png").write_bytes(b"")
        (tmp_path / "notes.jpg").write_text("not an image")
        Image.fromarray(_rgb(64, 64)).save(tmp_path / "t.jpg")
        data = (tmp_path / "t.jpg").read_bytes()
        (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
        for name, role, words in [
            ("empty.png", "style", "empty.png (style) is empty"),
            ("notes.jpg", "content", "notes.jpg (content) is not an image file"),
            ("t.jpg", "mask", "t.jpg (mask) is damaged or incomplete"),
        ]:
            with pytest.raises(image_io.ImageReadError, match=re.escape(words)):
                image_io.load_image(tmp_path / name, role=role)

    def test_a_photo_over_pils_bomb_threshold_is_read_with_one_plain_line(
        self, tmp_path, monkeypatch, caplog
    ):
        Image.fromarray(_rgb(40, 50)).save(tmp_path / "big.png")
        Image.fromarray(_rgb(80, 100)).save(tmp_path / "huge.png")
        # Thresholds scaled down: 40x50 is "large", 80x100 over the limit.
        monkeypatch.setattr(image_io, "LARGE_PIXELS", 1500)
        monkeypatch.setattr(image_io, "MAX_PIXELS", 3000)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with caplog.at_level(logging.INFO, logger="absl"):
                image = image_io.load_image(tmp_path / "big.png", role="content")
            with pytest.raises(image_io.ImageReadError, match=r"huge.png \(style\) is too large"):
                image_io.load_image(tmp_path / "huge.png", role="style")
        assert image.shape == (40, 50, 3)
        assert "big.png (content) is 50x40 (0 megapixels)" in caplog.text
        assert not caught  # PIL's DecompressionBombWarning never reaches the user.


def test_a_12000_by_9000_photo_is_large_but_readable():
    """The limits themselves: PIL's warning threshold, PIL's error threshold, PIL's check off."""
    assert Image.MAX_IMAGE_PIXELS is None
    assert image_io.LARGE_PIXELS < 12000 * 9000 < image_io.MAX_PIXELS


class TestSaveImage:
    def test_png_roundtrip_and_parent_dirs(self, tmp_path):
        image = np.random.default_rng(0).random((6, 5, 3)).astype(np.float32)
        path = tmp_path / "a" / "b" / "out.png"
        image_io.save_image(path, image)
        np.testing.assert_allclose(image_io.load_image(path), image, atol=0.5 / 255 + 1e-6)

    def test_jpeg_and_tensor_input(self, tmp_path):
        import tensorflow as tf

        image = tf.fill([8, 8, 3], 0.5)
        image_io.save_image(tmp_path / "out.JPG", image)
        with Image.open(tmp_path / "out.JPG") as img:
            assert img.format == "JPEG"
        np.testing.assert_allclose(image_io.load_image(tmp_path / "out.JPG"), 0.5, atol=0.02)

    def test_clips_and_accepts_gray_and_batch_of_one(self, tmp_path):
        image_io.save_image(tmp_path / "c.png", np.array([[[-1.0, 0.5, 2.0]]]))
        np.testing.assert_allclose(image_io.load_image(tmp_path / "c.png")[0, 0], [0, 128 / 255, 1])
        image_io.save_image(tmp_path / "g.png", np.zeros((1, 3, 4, 1)))
        assert image_io.load_image(tmp_path / "g.png").shape == (3, 4, 3)

    def test_rejects_bad_extension_and_shape(self, tmp_path):
        with pytest.raises(ValueError, match="extension"):
            image_io.save_image(tmp_path / "a.gifx", np.zeros((2, 2, 3)))
        with pytest.raises(ValueError, match="shape"):
            image_io.save_image(tmp_path / "a.png", np.zeros((2, 2, 5)))


class TestListImages:
    def test_recursive_case_insensitive_sorted(self, tmp_path):
        for name in [
            "b.JPG",
            "a.png",
            "sub/c.Jpeg",
            "sub/deeper/d.webp",
            "e.bmp",
            "notes.txt",
            "._f.jpg",
        ]:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(b"x")
        files = image_io.list_images(tmp_path)
        rel = [os.path.relpath(f, tmp_path) for f in files]
        assert rel == sorted(rel)
        assert set(rel) == {
            "b.JPG",
            "a.png",
            "e.bmp",
            os.path.join("sub", "c.Jpeg"),
            os.path.join("sub", "deeper", "d.webp"),
        }
        flat = image_io.list_images(tmp_path, recursive=False)
        assert [os.path.basename(f) for f in flat] == ["a.png", "b.JPG", "e.bmp"]

    def test_missing_and_empty_directories(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nowhere"):
            image_io.list_images(tmp_path / "nowhere")
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "readme.txt").write_text("no images")
        with pytest.raises(ValueError, match="empty"):
            image_io.list_images(tmp_path / "empty")
        with pytest.raises(NotADirectoryError):
            image_io.list_images(tmp_path / "empty" / "readme.txt")


class TestMakeGrid:
    def test_common_height_and_padding(self):
        rows = [
            [np.zeros((10, 20, 3)), np.zeros((20, 20, 3))],
            [np.zeros((10, 10))],  # Grayscale, shorter row.
        ]
        grid = image_io.make_grid(rows, pad=2)
        # Height 10 for all cells: row 0 = 20 + 2 + 10 wide, row 1 = 10 wide.
        assert grid.shape == (2 * (10 + 2) + 2, 32 + 2 * 2, 3)
        assert grid.dtype == np.float32
        assert grid[0].min() == 1.0 and grid[2:12, 2:22].max() == 0.0
        assert grid[14:24, 12:].min() == 1.0  # Short row padded on the right.

    def test_explicit_height(self):
        grid = image_io.make_grid([[np.full((4, 8, 3), 0.5)]], pad=0, height=8)
        assert grid.shape == (8, 16, 3)
        np.testing.assert_allclose(grid, 0.5, atol=1e-5)

    def test_empty(self):
        with pytest.raises(ValueError):
            image_io.make_grid([[]])


def test_load_square_resizes_short_side_and_centre_crops(tmp_path):
    path = os.path.join(tmp_path, "wide.png")
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, 25:35] = 255  # Scaled 2x, this band is columns 10-30 of the crop.
    Image.fromarray(pixels).save(path)
    image = image_io.load_square(path, 40)
    assert image.shape == (40, 40, 3) and image.dtype == np.float32
    assert image[:, 10:30].mean() > 0.95 and image[:, :5].mean() < 0.05
