"""Reading, writing, listing and tiling images as float32 RGB arrays in [0, 1]."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image, ImageOps

# Lower-case file extensions treated as images by `list_images` and the
# directory input pipeline in `exchange_st.data.pipeline`.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# PIL save format for each extension `save_image` accepts.
_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".webp": "WEBP",
}


# Pixel counts: above LARGE_PIXELS (PIL's decompression-bomb warning threshold)
# `load_image` reads the image with one plain log line, since a photo of ~100
# megapixels is a camera's, not an attack; above MAX_PIXELS (PIL's error
# threshold) it refuses it as too large. PIL's own check is off, so its
# warning never reaches the user.
LARGE_PIXELS = Image.MAX_IMAGE_PIXELS
MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS
Image.MAX_IMAGE_PIXELS = None


class ImageReadError(OSError):
    """An image file exists but cannot be decoded (corrupt, truncated, not an image)."""


def load_image(
    path: str | os.PathLike,
    max_size: int | None = None,
    min_short_side: int | None = None,
    role: str | None = None,
) -> np.ndarray:
    """Loads any PIL-readable image as RGB float32 in [0, 1].

    EXIF orientation is applied, so a portrait photo stored sideways comes back
    upright. Every PIL mode is normalised to RGB: grayscale (`1`, `L`, 16-bit
    `I;16*`, 32-bit `I`, float `F`) is scaled by its own range and replicated
    to three channels, images with transparency (`RGBA`, `LA`, `PA`, palette
    with `tRNS`) are composited on white, and palette / CMYK / YCbCr are
    converted.

    Args:
      path: Image file path.
      max_size: If given, the longer side is bounded by this many pixels
        (aspect ratio kept, Lanczos filter). Smaller images are not upscaled.
      min_short_side: If given, a JPEG at least twice this size on its
        smaller side may be decoded at 1/2, 1/4 or 1/8 scale (in the DCT
        domain, fast), never below this size; for callers that resize the
        image down anyway (the training pipelines).
      role: what the image is for (`"content"`, `"style"`, `"mask"`), named
        in the errors: "photo.jpg (style) is not an image file".

    Returns:
      `np.ndarray` float32 `[H, W, 3]` in [0, 1].

    Raises:
      FileNotFoundError: `path` does not exist.
      ImageReadError: The file cannot be decoded as an image.
      ValueError: `max_size` is not positive.
    """
    path = os.fspath(path)
    named = f"{path} ({role})" if role else path
    if max_size is not None and max_size <= 0:
        raise ValueError(f"max_size must be positive, got {max_size}.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{named} does not exist.")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ImageReadError(f"{named} is empty (0 bytes).")
    try:
        with Image.open(path) as img:
            pixels = img.width * img.height
            if pixels > MAX_PIXELS:
                raise ImageReadError(
                    f"{named} is too large to read: {img.width}x{img.height} is "
                    f"{pixels / 1e6:.0f} megapixels, over the limit of {MAX_PIXELS / 1e6:.0f} "
                    "(exchange_st.data.image_io.MAX_PIXELS)."
                )
            if pixels > LARGE_PIXELS:
                logging.info(
                    "%s is %dx%d (%.0f megapixels): reading it takes a while and %.1f GB.",
                    named,
                    img.width,
                    img.height,
                    pixels / 1e6,
                    pixels * 12 / 1e9,
                )
            if max_size is not None:
                # JPEG can decode at 1/2, 1/4 or 1/8 scale in the DCT domain;
                # draft keeps the result at least as big as the target, so the
                # Lanczos pass below still does the final, high-quality step.
                w, h = img.size
                scale = max_size / max(w, h)
                if scale < 1.0:
                    img.draft(img.mode, (max(1, int(w * scale)), max(1, int(h * scale))))
            elif min_short_side is not None:
                w, h = img.size
                ratio = next((r for r in (8, 4, 2) if min(w, h) // r >= min_short_side), 1)
                if ratio > 1:
                    img.draft(img.mode, (-(-w // ratio), -(-h // ratio)))
            img.load()
            img = _exif_transpose(img, path)
            array = to_float_rgb(img, what=path)
    except Image.UnidentifiedImageError as e:
        raise ImageReadError(
            f"{named} is not an image file (no image format PIL reads starts this way)."
        ) from e
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        # PIL signals damaged files with a mix of exception types; callers only
        # need to know which file failed and why.
        raise ImageReadError(f"{named} is damaged or incomplete: {e}") from e

    if max_size is not None:
        h, w = array.shape[:2]
        scale = max_size / max(h, w)
        if scale < 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            array = resize_array(array, size)
    return array


def save_image(path: str | os.PathLike, image) -> None:
    """Writes a float image in [0, 1] as 8-bit PNG, JPEG, BMP or WebP.

    Args:
      path: Output path; the format follows the extension and missing parent
        directories are created.
      image: `np.ndarray` or eager `tf.Tensor`, float `[H, W, 3]`, `[H, W, 1]`
        or `[H, W]` (a leading batch dimension of 1 is dropped). Values are
        clipped to [0, 1]; NaN is written as 0.

    Raises:
      ValueError: Unsupported extension or image shape.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _SAVE_FORMATS:
        raise ValueError(f"Cannot save {path}: extension must be one of {sorted(_SAVE_FORMATS)}.")
    array = to_float_rgb(image, what=f"image for {path}")
    array = np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=0.0)
    array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)

    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    kwargs = {"quality": 95} if _SAVE_FORMATS[ext] in ("JPEG", "WEBP") else {}
    Image.fromarray(array, mode="RGB").save(path, format=_SAVE_FORMATS[ext], **kwargs)


def list_images(directory: str | os.PathLike, recursive: bool = True) -> list[str]:
    """Lists image files (by extension, case-insensitive) under a directory.

    Hidden files are skipped: archives made on macOS carry `._name.jpg`
    resource forks that have an image extension but are not images.

    Args:
      directory: Directory to search.
      recursive: Also search subdirectories (following symlinks once).

    Returns:
      Sorted list of file paths, each starting with `directory`.

    Raises:
      FileNotFoundError: `directory` does not exist.
      NotADirectoryError: `directory` is a file.
      ValueError: No image files were found.
    """
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"Image directory does not exist: {directory}")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"Not a directory: {directory}")

    files = []
    if recursive:
        seen = set()
        for root, dirs, names in os.walk(directory, followlinks=True):
            # Following symlinks lets datasets be assembled from linked
            # folders; remembering real paths stops link cycles.
            real = os.path.realpath(root)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            files.extend(os.path.join(root, n) for n in names if _is_image_name(n))
    else:
        for name in os.listdir(directory):
            full = os.path.join(directory, name)
            if _is_image_name(name) and os.path.isfile(full):
                files.append(full)
    if not files:
        raise ValueError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in directory "
            f"{directory}{' or its subdirectories' if recursive else ''}."
        )
    return sorted(files)


def make_grid(
    rows: Sequence[Sequence],
    pad: int = 4,
    height: int | None = None,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tiles images into one figure, e.g. content | style | stylized per row.

    Every cell is resized (aspect ratio kept) to a common height, cells in a
    row are separated by `pad` pixels, and rows shorter than the widest one
    are padded on the right.

    Args:
      rows: List of rows, each a list of float images `[H, W, 3]`, `[H, W, 1]`
        or `[H, W]` in [0, 1] (`np.ndarray` or eager `tf.Tensor`); cells may
        differ in size.
      pad: Border and gap width in pixels.
      height: Cell height; defaults to the smallest cell height so that no
        cell is upsampled (keeps TensorBoard summaries small).
      pad_value: Gray level of the border, 1.0 = white.

    Returns:
      `np.ndarray` float32 `[rows * (height + pad) + pad, W, 3]` in [0, 1].

    Raises:
      ValueError: No cells, or a cell with an unsupported shape.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}.")
    cells = [[to_float_rgb(c, what="grid cell") for c in row] for row in rows]
    cells = [row for row in cells if row]
    if not cells:
        raise ValueError("make_grid needs at least one image.")
    if height is None:
        height = min(c.shape[0] for row in cells for c in row)

    row_images = []
    for row in cells:
        parts = []
        for cell in row:
            h, w = cell.shape[:2]
            width = max(1, round(w * height / h))
            parts.append(resize_array(cell, (height, width)) if (h, w) != (height, width) else cell)
            parts.append(np.full((height, pad, 3), pad_value, np.float32))
        row_images.append(np.concatenate(parts[:-1], axis=1))

    width = max(r.shape[1] for r in row_images) + 2 * pad
    grid = np.full((len(row_images) * (height + pad) + pad, width, 3), pad_value, np.float32)
    for i, r in enumerate(row_images):
        top = pad + i * (height + pad)
        grid[top : top + height, pad : pad + r.shape[1]] = r
    return grid


def resize_array(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes a float image with PIL's Lanczos filter, per channel in float.

    Working in float (PIL mode `F`) keeps 16-bit precision that an 8-bit
    round trip would lose.

    Args:
      image: float `[H, W, C]`.
      size: Target `(height, width)`.

    Returns:
      float32 `[height, width, C]`, clipped to [0, 1] because Lanczos rings.
    """
    height, width = size
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), mode="F").resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _exif_transpose(img: Image.Image, path: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception as e:  # noqa: BLE001 - malformed EXIF must not lose the pixels.
        logging.warning("Ignoring unreadable EXIF orientation in %s: %s", path, e)
        return img


def to_float_rgb(image, what: str = "image") -> np.ndarray:
    """The one conversion to float32 RGB `[H, W, 3]` in [0, 1]: PIL images and arrays.

    Integer arrays are scaled by their type's range (uint8 by 255, uint16 by
    65535); float arrays are taken as [0, 1]. Gray (`[H, W]` or one channel)
    is replicated; gray+alpha and RGBA are composited on white, which is what
    viewers show under transparent pixels (their colour is arbitrary). A
    leading batch dimension of 1 is dropped. PIL images of any mode go the
    same way after `_pil_array` (16-bit and float grayscale scaled by their
    own range, palettes expanded).

    Args:
      image: a `PIL.Image.Image`, or an array-like (`np.ndarray`, eager
        `tf.Tensor`, video frame) `[H, W]`, `[H, W, C]` or `[1, H, W, C]`,
        C in 1..4.
      what: what the image is, for the error message.

    Raises:
      ValueError: another shape.
    """
    array = _pil_array(image) if isinstance(image, Image.Image) else np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or not 1 <= array.shape[-1] <= 4 or 0 in array.shape:
        raise ValueError(f"Expected {what} of shape [H, W, 3], got {array.shape}.")
    if array.shape[-1] in (2, 4):
        alpha = array[..., -1:]
        array = array[..., :-1] * alpha + (1.0 - alpha)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array, dtype=np.float32)


def _pil_array(img: Image.Image) -> np.ndarray:
    """PIL image of any mode -> uint8/uint16/float array with 1-4 channels for `to_float_rgb`."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode in ("I", "F"):
        return _scale_wide_gray(np.asarray(img).astype(np.float64))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return np.asarray(img.convert("RGBA"))
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))


def _scale_wide_gray(gray: np.ndarray) -> np.ndarray:
    """Maps 32-bit int / float grayscale to [0, 1] by its likely nominal range."""
    lo, hi = float(gray.min()), float(gray.max())
    if lo >= 0.0:
        # PIL reports 16-bit PNG/TIFF as mode I on some versions and float
        # TIFFs are usually stored in [0, 1]; pick the smallest usual range.
        for full_scale in (1.0, 255.0, 65535.0):
            if hi <= full_scale:
                return (gray / full_scale).astype(np.float32)
    span = hi - lo
    return ((gray - lo) / span if span > 0 else np.zeros_like(gray)).astype(np.float32)


def load_square(path, size, role=None) -> np.ndarray:
    """Short side resized to `size` (Lanczos), then the centre `size x size` crop.

    How every evaluation reads its images (eval.py, the learning check, the
    sweep, the release check), so that they compare the same pixels.

    Args:
      path: the image file.
      size: side of the square.
      role: named in errors as in `load_image`.

    Returns:
      float32 `[size, size, 3]` in [0, 1].

    Raises:
      ImageReadError, FileNotFoundError: unreadable file.
    """
    image = load_image(path, role=role)
    h, w = image.shape[:2]
    scale = size / min(h, w)
    # max(size, ...) keeps rounding from leaving the short side at size - 1.
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) != (h, w):
        image = resize_array(image, (new_h, new_w))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])
