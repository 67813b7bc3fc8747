"""Video input/output as float frames: imageio + ffmpeg when installed, PNG sequences otherwise."""

from __future__ import annotations

import os

import numpy as np
from absl import logging

from exchange_st.data import image_io

# Frame rate assumed for a directory of frames (it carries none).
DEFAULT_FPS = 24.0
VIDEO_FORMATS = ("auto", "mp4", "frames")
INSTALL_HINT = (
    "pip install 'exchange_st[video]' (i.e. pip install imageio imageio-ffmpeg; "
    "the imageio-ffmpeg wheel bundles an ffmpeg binary)"
)


class VideoUnavailableError(RuntimeError):
    """Reading or writing a video file needs imageio / imageio-ffmpeg, which are missing."""


def _imageio():
    """Returns `imageio.v2` or None: video support is an optional extra."""
    try:
        import imageio.v2 as iio  # noqa: PLC0415 - optional dependency.
    except ImportError:
        return None
    return iio


def has_ffmpeg():
    """Whether imageio and an ffmpeg binary (e.g. from imageio-ffmpeg) are usable."""
    if _imageio() is None:
        return False
    try:
        import imageio_ffmpeg  # noqa: PLC0415 - optional dependency.

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return False
    return True


def _even_size(height, width):
    # H.264 with yuv420p chroma needs even sides.
    return height - height % 2, width - width % 2


def _bounded_size(height, width, max_size):
    """Size with the longer side at most `max_size`, both sides even."""
    if max_size is not None and max(height, width) > max_size:
        scale = max_size / max(height, width)
        height, width = max(2, round(height * scale)), max(2, round(width * scale))
    return _even_size(height, width)


class VideoReader:
    """Iterates over the frames of a video file or a directory of frame images.

    Frames come out as float32 `[H, W, 3]` in [0, 1], resized so the longer
    side is at most `max_size` and cropped/rounded to even sides (so that the
    stylized frames can be encoded as H.264 without resampling).

    Args:
      path: a video file imageio can read (mp4/mov/avi/... need ffmpeg; GIF
        works with plain imageio) or a directory of frame images, read in
        sorted file-name order at `DEFAULT_FPS`.
      max_size: bound of the longer side, or None.
      max_frames: stop after this many frames, or None for all.

    Attributes:
      fps: frames per second of the source.
      num_frames: frame count if known in advance (else None), already
        capped by `max_frames`.

    Raises:
      FileNotFoundError: `path` does not exist.
      VideoUnavailableError: a video file but imageio (or ffmpeg) is missing.
    """

    def __init__(self, path, max_size=None, max_frames=None):
        self.path = os.fspath(path)
        self.max_size = max_size
        self.max_frames = max_frames
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"Video does not exist: {self.path}")
        self._files = None
        self._reader = None
        if os.path.isdir(self.path):
            self._files = image_io.list_images(self.path, recursive=False)
            self.fps = DEFAULT_FPS
            count = len(self._files)
        else:
            iio = _imageio()
            if iio is None:
                raise VideoUnavailableError(
                    f"Cannot read video {self.path}: reading video files needs imageio "
                    f"and imageio-ffmpeg; {INSTALL_HINT}. Alternatively pass a "
                    "directory of frame images."
                )
            try:
                self._reader = iio.get_reader(self.path)
                meta = self._reader.get_meta_data()
            except Exception as e:  # noqa: BLE001 - imageio raises many types.
                hint = "" if has_ffmpeg() else f" (no ffmpeg found: {INSTALL_HINT})"
                raise VideoUnavailableError(f"Cannot read video {self.path}: {e}{hint}") from e
            self.fps = float(meta.get("fps") or DEFAULT_FPS)
            count = _frame_count(meta)
        if count is not None and max_frames is not None:
            count = min(count, max_frames)
        self.num_frames = count

    def __iter__(self):
        source = self._files if self._files is not None else self._reader
        for i, item in enumerate(source):
            if self.max_frames is not None and i >= self.max_frames:
                break
            if self._files is not None:
                frame = image_io.load_image(item)
            else:
                frame = image_io.to_float_rgb(np.asarray(item), what=f"frame of {self.path}")
            yield self._resize(frame)

    def _resize(self, frame):
        h, w = frame.shape[:2]
        size = _bounded_size(h, w, self.max_size)
        if size == (h, w):
            return frame
        if size[0] <= h and size[1] <= w and (h - size[0]) <= 1 and (w - size[1]) <= 1:
            return frame[: size[0], : size[1]]
        return image_io.resize_array(frame, size)

    def close(self):
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _frame_count(meta):
    duration, fps = meta.get("duration"), meta.get("fps")
    nframes = meta.get("nframes")
    if isinstance(nframes, int):
        return nframes
    if duration and fps:
        # ffmpeg reports nframes as inf; duration * fps is the usual estimate.
        return int(round(duration * fps))
    return None


class VideoWriter:
    """Writes float frames as an H.264 mp4 (imageio-ffmpeg) or a PNG sequence.

    Args:
      path: output path without extension; `.mp4` or `_frames/` is appended.
      fps: frame rate of the mp4.
      video_format: `"mp4"` (error if ffmpeg is missing), `"frames"` (PNG
        files `frame_000000.png`, ... in a directory) or `"auto"` (mp4 if
        ffmpeg is available, else frames with a warning).

    Attributes:
      path: the file or directory being written.
      video_format: the resolved format, `"mp4"` or `"frames"`.
      frames_written: frames written so far.
    """

    def __init__(self, path, fps=DEFAULT_FPS, video_format="auto"):
        if video_format not in VIDEO_FORMATS:
            raise ValueError(f"video_format must be one of {VIDEO_FORMATS}, got {video_format!r}")
        path = os.fspath(path)
        if video_format == "auto":
            video_format = "mp4" if has_ffmpeg() else "frames"
            if video_format == "frames":
                logging.warning(
                    "imageio-ffmpeg is not installed, so %s is written as a PNG frame "
                    "sequence in %s_frames/ instead of an mp4; %s.",
                    path,
                    path,
                    INSTALL_HINT,
                )
        elif video_format == "mp4" and not has_ffmpeg():
            raise VideoUnavailableError(f"Writing mp4 needs imageio-ffmpeg; {INSTALL_HINT}.")
        self.video_format = video_format
        self.fps = fps
        self.frames_written = 0
        self._writer = None
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        if video_format == "mp4":
            self.path = path + ".mp4"
        else:
            self.path = path + "_frames"
            os.makedirs(self.path, exist_ok=True)

    def write(self, frame):
        """Appends one float `[H, W, 3]` frame in [0, 1] (odd sides lose a row/column)."""
        frame = np.asarray(frame, np.float32)
        if self.video_format == "frames":
            image_io.save_image(
                os.path.join(self.path, f"frame_{self.frames_written:06d}.png"), frame
            )
        else:
            h, w = _even_size(*frame.shape[:2])
            pixels = np.round(np.clip(np.nan_to_num(frame[:h, :w]), 0.0, 1.0) * 255.0)
            if self._writer is None:
                # macro_block_size=1: frames are already even-sided, so ffmpeg
                # must not rescale them to multiples of 16.
                self._writer = _imageio().get_writer(
                    self.path,
                    fps=self.fps,
                    codec="libx264",
                    quality=8,
                    macro_block_size=1,
                    pixelformat="yuv420p",
                )
            self._writer.append_data(pixels.astype(np.uint8))
        self.frames_written += 1

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def count_frames(path):
    """Number of frames of a video file (decodes it) or of a frame directory."""
    with VideoReader(path) as reader:
        return sum(1 for _ in reader)
