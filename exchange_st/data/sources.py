"""What both input pipelines share, without TensorFlow: the config, file checks, seeds.

`exchange_st.data.pipeline` (tf.data, TensorFlow only) and `exchange_st.data.pydata`
(`keras.utils.PyDataset`, any backend) read the same `DataConfig` and check
image directories with the same PIL scan.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image

from exchange_st.data import image_io

BUILTIN_SOURCE = "builtin"
TFDS_PREFIX = "tfds:"
# Which pipeline reads the data: "tf" (`data`, tf.data), "py" (`pydata`,
# a PyDataset) or "auto" (tf.data on the TensorFlow backend, else the PyDataset).
PIPELINES = ("auto", "tf", "py")

# EXIF tag holding the orientation (1..8) of the stored pixels.
_EXIF_ORIENTATION = 0x0112
# How many bad file names a warning lists before summarising.
_MAX_LISTED_BAD_FILES = 20


@dataclasses.dataclass
class DataConfig:
    """Input pipeline configuration (both pipelines).

    Attributes:
      content_source: Where content images come from; see
        `data.make_image_dataset` for the accepted forms (directory,
        `tfds:<name>[:<split>]` (tf.data only), `builtin`). The paper uses
        Places365.
      style_source: Same for style images. The paper uses WikiArt.
      resize_short_side: The smaller image side is resized to this many pixels
        keeping the aspect ratio (small images are upscaled) before cropping.
      crop_size: Side of the random square training crop.
      batch_size: Global batch size (pairs per step).
      shuffle_buffer: Examples in the shuffle buffer of TFDS sources (encoded
        bytes, so it is cheap). Directories shuffle their whole file list.
      seed: Seed for shuffling, cropping and builtin images; None draws one
        from Python's `random` (so `keras.utils.set_random_seed` fixes it) and
        lets tf.data trade element order for speed.
      builtin_size: Side of the procedural images of the `builtin` source
        before the resize / crop.
      validate_files: Check every directory file with PIL before training
        (reports and drops corrupt files, reads EXIF orientation). Turn off for
        directories so large that a scan is too slow; corrupt files are then
        only skipped at runtime and EXIF orientation is ignored (tf.data).
      skip_unreadable: With `validate_files`, skip the files that cannot be
        read and list them (the default of every command: README, "Unreadable
        inputs"); False refuses the directory, naming every such file.
      pipeline: `"auto"` (tf.data on the TensorFlow backend, the PyDataset
        on others), `"tf"` or `"py"`.
      workers: PyDataset only: threads (or processes) preparing batches;
        1 prepares them in the training thread.
      use_multiprocessing: PyDataset only: `workers` processes, not threads.
    """

    content_source: str
    style_source: str
    resize_short_side: int = 512
    crop_size: int = 256
    batch_size: int = 4
    shuffle_buffer: int = 1000
    seed: int | None = None
    builtin_size: int = 64
    validate_files: bool = True
    skip_unreadable: bool = True
    pipeline: str = "auto"
    workers: int = 1
    use_multiprocessing: bool = False

    def __post_init__(self):
        if self.pipeline not in PIPELINES:
            raise ValueError(
                f"DataConfig.pipeline must be one of {PIPELINES}, got {self.pipeline!r}."
            )
        for name in (
            "resize_short_side",
            "crop_size",
            "batch_size",
            "shuffle_buffer",
            "builtin_size",
            "workers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"DataConfig.{name} must be >= 1, got {getattr(self, name)}.")
        if self.crop_size > self.resize_short_side:
            raise ValueError(
                f"DataConfig.crop_size ({self.crop_size}) cannot exceed "
                f"resize_short_side ({self.resize_short_side})."
            )


def check_sources(cfg: DataConfig) -> None:
    """Lists both sources' directories now, so that bad inputs stop a run before its model.

    The listing is what the pipelines use later (`list_directory` checks a
    directory once per process), so this costs nothing extra.

    Raises:
      FileNotFoundError, NotADirectoryError, ValueError: a missing or empty
        directory, or one that no file of can be read.
      image_io.ImageReadError: an unreadable file without `skip_unreadable`.
    """
    for source in (cfg.content_source, cfg.style_source):
        if source == BUILTIN_SOURCE or source.startswith(TFDS_PREFIX):
            continue
        if os.path.exists(source) and not os.path.isdir(source):
            raise NotADirectoryError(
                f"Image source {source} is a file: expected a directory, "
                f"'{TFDS_PREFIX}<name>[:<split>]' or '{BUILTIN_SOURCE}'."
            )
        list_directory(source, cfg.validate_files, cfg.skip_unreadable)


# ----------------------------------------------------------------------------
# File validation.
# ----------------------------------------------------------------------------


def scan_image_files(files: Sequence[str]) -> tuple[list[str], list[str]]:
    """Checks image files with PIL and separates readable ones from bad ones.

    The check is quick rather than a full decode: PIL parses the header and
    runs `verify` (PNG chunk CRCs catch truncation); JPEGs lacking the
    end-of-image marker are fully decoded at 1/8 scale to confirm. Bad files
    are logged with `absl.logging.warning`. Files that still fail in TF at run
    time are dropped by `ignore_errors` in the dataset.

    Args:
      files: Image paths.

    Returns:
      `(good, bad)` lists of paths, each in input order.
    """
    good, _, bad, _ = _scan(files)
    return good, bad


def list_directory(
    directory: str, validate: bool, skip_unreadable: bool = True
) -> tuple[list[str], list[int]]:
    """The image files of a training directory and their EXIF orientations.

    With `validate`, every file is checked with PIL first (corrupt ones are
    dropped and listed in a warning, or refused without `skip_unreadable`);
    otherwise all are kept, orientation 1.

    Raises:
      ValueError: no file of the directory can be read.
      image_io.ImageReadError: a file cannot be read and not `skip_unreadable`.
    """
    files = image_io.list_images(directory, recursive=True)
    if not validate:
        return files, [1] * len(files)
    # A run builds its input more than once (training batches, the sample
    # grid, a resume): the files are checked, and the skipped ones listed,
    # once per process for as long as they do not change.
    key = (directory, skip_unreadable, tuple(files), tuple(os.stat(f).st_mtime_ns for f in files))
    if key in _SCANNED:
        return _SCANNED[key]
    files, orientations, bad, reasons = _scan(files, warn=skip_unreadable)
    if bad and not skip_unreadable:
        raise image_io.ImageReadError(
            f"{len(bad)} of the {len(bad) + len(files)} image files of {directory} cannot be "
            f"read (--skip_unreadable trains on the others): {_listing(reasons, '; ')}"
        )
    if not files:
        raise ValueError(
            f"None of the {len(bad)} image files in {directory} can be read; "
            "see the warning above for the reasons."
        )
    logging.info(
        "Image directory %s: %d readable files, %d skipped.", directory, len(files), len(bad)
    )
    _SCANNED[key] = (files, orientations)
    return files, orientations


# list_directory's checked directories: (directory, files, mtimes) -> result.
_SCANNED = {}


def _scan(files: Sequence[str], warn: bool = True):
    """`scan_image_files` that also returns each good file's EXIF orientation.

    Returns:
      `(good, orientations, bad, reasons)`: `reasons` are "path (what is wrong)"
      for the bad files, which are listed in one warning when `warn`.
    """
    files = list(files)
    if len(files) > 1000:
        logging.info("Checking %d image files with PIL...", len(files))
    # Mostly file I/O and C decoders that release the GIL, so threads help.
    workers = min(32, 4 * (os.cpu_count() or 1), max(1, len(files)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_inspect_file, files))

    good, orientations, bad, reasons = [], [], [], []
    for path, (orientation, error) in zip(files, results):
        if error is None:
            good.append(path)
            orientations.append(orientation)
        else:
            bad.append(path)
            reasons.append(f"{path} {error}")
    if bad and warn:
        logging.warning(
            "Skipping %d of %d image files that cannot be read:\n  %s",
            len(bad),
            len(files),
            _listing(reasons, "\n  "),
        )
    return good, orientations, bad, reasons


def _listing(reasons: Sequence[str], separator: str) -> str:
    """The first `_MAX_LISTED_BAD_FILES` reasons joined, and how many more there are."""
    more = len(reasons) - _MAX_LISTED_BAD_FILES
    tail = [f"... and {more} more"] if more > 0 else []
    return separator.join(list(reasons[:_MAX_LISTED_BAD_FILES]) + tail)


def _inspect_file(path: str) -> tuple[int, str | None]:
    """Returns (EXIF orientation, None) for a readable image, (1, reason) otherwise.

    The reasons are in the plain words of `image_io.load_image`: "is empty",
    "is not an image file", "is damaged or incomplete".
    """
    try:
        if os.path.getsize(path) == 0:
            return 1, "is empty (0 bytes)"
        with Image.open(path) as img:
            if img.width * img.height > image_io.MAX_PIXELS:
                return 1, f"is too large to read: {img.width}x{img.height} pixels"
            # verify() must come first and leaves the image unusable, so the
            # EXIF is read from a second open.
            img.verify()
        with Image.open(path) as img:
            image_format = img.format
            try:
                orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # noqa: BLE001 - broken EXIF only loses the rotation.
                orientation = 1
        if image_format == "JPEG":
            # Real JPEGs end with the EOI marker; only suspicious files pay for
            # a (1/8 scale) decode, which raises on truncated data.
            with open(path, "rb") as f:
                f.seek(-2, os.SEEK_END)
                complete = f.read(2) == b"\xff\xd9"
            if not complete:
                with Image.open(path) as img:
                    img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                    img.load()
        elif image_format != "PNG":
            # verify() is a no-op for formats like BMP; decode them fully.
            with Image.open(path) as img:
                img.load()
        return orientation, None
    except Image.UnidentifiedImageError:
        return 1, "is not an image file"
    except Exception as e:  # noqa: BLE001 - any failure means "skip this file".
        return 1, f"is damaged or incomplete ({type(e).__name__}: {e})"


def derive_seed(*values: int) -> int:
    """Mixes integers into an independent 31-bit seed (stable across runs)."""
    return int(np.random.SeedSequence([v % 2**32 for v in values]).generate_state(1)[0] >> 1)
