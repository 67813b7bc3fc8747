"""The training pairs as a `keras.utils.PyDataset`: PIL + NumPy, no TensorFlow (Sec. 3.5).

The same recipe as the tf.data pipeline of `exchange_st.data.pipeline`, for backends
without TensorFlow (JAX) or when asked (`DataConfig.pipeline="py"`): the
smaller side of every image is resized to `resize_short_side` (bilinear,
antialiased, small images upscaled), then a random `crop_size` square is
cut; content and style streams are shuffled independently. Sources are
image directories (checked with PIL first, EXIF orientation applied) and
`builtin` procedural images; TFDS needs TensorFlow and stays with tf.data.

Batch `i` is a pure function of `(seed, i)`, whichever worker makes it, so
`workers` threads or processes give the same batches as one. The pixels are
not bit-identical to the tf.data pipeline's (different decoders, resamplers
and random generators); the distribution of crops is the same.
"""

from __future__ import annotations

import random

import keras
import numpy as np
from absl import logging
from PIL import Image

from exchange_st.data import image_io
from exchange_st.data.sources import (
    BUILTIN_SOURCE,
    TFDS_PREFIX,
    DataConfig,
    derive_seed,
    list_directory,
)

# A file that fails to decode is replaced by the next one of the order; this
# many failures in a row stop the run (the directory is unusable).
_MAX_FAILURES_IN_A_ROW = 100


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """float32 `[H, W, 3]` with its smaller side resized to `short_side` (ratio kept).

    Bilinear with PIL's antialiasing support, like `data.resize_short_side`
    (`tf.image.resize(..., antialias=True)`), clipped to [0, 1].
    """
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    if height <= width:
        size = (short_side, int(round(width * scale)))
    else:
        size = (int(round(height * scale)), short_side)
    if size == (height, width):
        return image.astype(np.float32)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), mode="F").resize(
                (size[1], size[0]), Image.Resampling.BILINEAR
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def random_crop(image: np.ndarray, crop_size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed `crop_size` square of `[H, W, C]` (both sides >= crop_size)."""
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - crop_size + 1))
    left = int(rng.integers(0, width - crop_size + 1))
    return image[top : top + crop_size, left : left + crop_size]


def builtin_image(seed, size: int) -> np.ndarray:
    """A procedural RGB image, float32 `[size, size, 3]` in [0, 1] (NumPy).

    The NumPy twin of `data.builtin_image`: two of stripes, checkerboard,
    gradient, blobs or value noise with random colours, blended, plus a
    little pixel noise. The same seed gives the same image.

    Args:
      seed: any `np.random.SeedSequence` entropy (an int or ints).
      size: side in pixels.
    """
    root = np.random.SeedSequence(seed)
    first, second, rest = root.spawn(3)
    rng = np.random.default_rng(rest)
    mix = rng.uniform(0.0, 0.5)
    noise = rng.normal(0.0, 0.02, (size, size, 3))
    image = (1.0 - mix) * _pattern(first, size) + mix * _pattern(second, size) + noise
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _pattern(seed: np.random.SeedSequence, size: int) -> np.ndarray:
    """One procedural pattern, float `[size, size, 3]` in [0, 1]."""
    rng = np.random.default_rng(seed)
    kind = int(rng.integers(0, 5))
    colors = rng.uniform(size=(4, 3))
    coords = (np.arange(size) + 0.5) / size
    y, x = np.meshgrid(coords, coords, indexing="ij")
    angle = rng.uniform(0.0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)

    def blend(t, c0, c1):
        return c0 * (1.0 - t[..., None]) + c1 * t[..., None]

    if kind == 0:  # Stripes.
        freq, sharpness = rng.uniform(2.0, 16.0), rng.uniform(1.0, 20.0)
        phase = rng.uniform(0.0, 6.28)
        t = 1.0 / (1.0 + np.exp(-sharpness * np.sin(2.0 * np.pi * freq * u + phase)))
        return blend(t, colors[0], colors[1])
    if kind == 1:  # Checkerboard.
        cells = np.floor(rng.uniform(2.0, 12.0))
        t = np.mod(np.floor(u * cells) + np.floor(v * cells), 2.0)
        return blend(t, colors[0], colors[1])
    if kind == 2:  # Linear or radial gradient.
        linear = np.clip(u - u.min(), 0.0, 1.0)
        center = rng.uniform(size=2)
        radial = np.clip(np.sqrt((x - center[0]) ** 2 + (y - center[1]) ** 2), 0.0, 1.0)
        t = linear if rng.uniform() < 0.5 else radial
        return blend(t, colors[0], blend(t, colors[1], colors[2]))
    if kind == 3:  # Gaussian blobs.
        image = np.broadcast_to(colors[0], (size, size, 3))
        for _ in range(6):
            cy, cx = rng.uniform(size=2)
            sigma = rng.uniform(0.04, 0.25)
            weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * sigma**2))
            image = blend(weight, image, rng.uniform(size=3))
        return image
    # Smooth value noise: a coarse random grid upsampled bilinearly.
    coarse = Image.fromarray(rng.uniform(size=(8, 8)).astype(np.float32), mode="F")
    t = np.asarray(coarse.resize((size, size), Image.Resampling.BILINEAR), np.float64)
    t = 0.8 * t + 0.2 * rng.uniform(size=(size, size))
    return blend(t, colors[0], colors[1])


class _BuiltinSource:
    """Element `i` of stream `seed`: a procedural image and its crop, from `(seed, i)`."""

    def __init__(self, cfg: DataConfig, seed: int):
        self.cfg, self.seed = cfg, seed

    def crop(self, index: int) -> np.ndarray:
        image = builtin_image([self.seed, index], self.cfg.builtin_size)
        image = resize_short_side(image, self.cfg.resize_short_side)
        rng = np.random.default_rng([self.seed, index, 1])
        return random_crop(image, self.cfg.crop_size, rng)


class _DirectorySource:
    """Element `i`: file `order(i // n)[i % n]` of `n` files, a new order per pass."""

    def __init__(self, directory: str, cfg: DataConfig, seed: int):
        files, _ = list_directory(directory, cfg.validate_files, cfg.skip_unreadable)
        self.files, self.cfg, self.seed = files, cfg, seed
        self._order = (None, None)

    def _file(self, index: int) -> str:
        n = len(self.files)
        epoch, position = divmod(index, n)
        order = self._order  # One read: worker threads may replace it.
        if order[0] != epoch:
            order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(n))
            self._order = order
        return self.files[order[1][position]]

    def crop(self, index: int) -> np.ndarray:
        for attempt in range(_MAX_FAILURES_IN_A_ROW):
            path = self._file(index + attempt)
            try:
                image = image_io.load_image(path, min_short_side=self.cfg.resize_short_side)
            except (OSError, ValueError) as e:
                logging.warning("Skipping %s: %s", path, e)
                continue
            image = resize_short_side(image, self.cfg.resize_short_side)
            rng = np.random.default_rng([self.seed, index, 1])
            return random_crop(image, self.cfg.crop_size, rng)
        raise ValueError(
            f"{_MAX_FAILURES_IN_A_ROW} files in a row failed to load from the image "
            "directory; see the warnings above."
        )


def make_source(source: str, cfg: DataConfig, seed: int):
    """An object whose `crop(i)` is element `i` of the stream of `source`.

    Raises:
      ValueError: a TFDS source (tf.data only), an unknown source, or a
        directory without readable images.
      FileNotFoundError / NotADirectoryError: a missing directory.
    """
    if source == BUILTIN_SOURCE:
        return _BuiltinSource(cfg, seed)
    if source.startswith(TFDS_PREFIX):
        raise ValueError(
            f"{source!r}: TFDS sources need TensorFlow's tf.data pipeline; on this "
            "backend use an image directory (or export the dataset to one) or 'builtin'."
        )
    return _DirectorySource(source, cfg, seed)


class PairDataset(keras.utils.PyDataset):
    """Infinite batches `{"content": [B, crop, crop, 3], "style": [B, crop, crop, 3]}`.

    float32 in [0, 1]. `num_batches` is None (infinite): give `fit` a
    `steps_per_epoch`. Batch `i` holds elements `i * B .. i * B + B - 1` of
    both streams, so it depends on `(seed, i)` only.

    Args:
      cfg: `DataConfig`; `workers` and `use_multiprocessing` configure the
        Keras enqueuer (workers=1: batches are made in the training loop).
      batch_size: examples per batch (default `cfg.batch_size`).
      seed: default `cfg.seed`, else a random one from Python's `random`
        (so `keras.utils.set_random_seed` fixes it).
    """

    def __init__(self, cfg: DataConfig, batch_size: int | None = None, seed: int | None = None):
        super().__init__(
            workers=cfg.workers,
            use_multiprocessing=cfg.use_multiprocessing,
            max_queue_size=max(10, 2 * cfg.workers),
        )
        self.cfg = cfg
        self.batch_size = batch_size or cfg.batch_size
        if seed is None:
            seed = cfg.seed if cfg.seed is not None else random.randrange(2**31)
        self.content = make_source(cfg.content_source, cfg, derive_seed(seed, 0))
        self.style = make_source(cfg.style_source, cfg, derive_seed(seed, 1))

    @property
    def num_batches(self):
        return None

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        first = index * self.batch_size
        indices = range(first, first + self.batch_size)
        return {
            "content": np.stack([self.content.crop(i) for i in indices]),
            "style": np.stack([self.style.crop(i) for i in indices]),
        }
