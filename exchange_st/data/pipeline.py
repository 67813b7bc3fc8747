"""tf.data pipeline of random (content, style) crop pairs (paper Sec. 3.5).

TensorFlow only. `exchange_st.data.pydata` is the same pipeline as a
`keras.utils.PyDataset` for backends without TensorFlow; both read the
`DataConfig` and file checks of `exchange_st.data.sources`.
"""

from __future__ import annotations

import os
import random

import numpy as np
import tensorflow as tf
from absl import logging

from exchange_st.data.tf_decode import apply_exif_orientation, decode_image
from exchange_st.data.tf_decode import tf_to_rgb as to_rgb
from exchange_st.data.sources import BUILTIN_SOURCE, TFDS_PREFIX, DataConfig, list_directory
from exchange_st.data.sources import derive_seed as _derive_seed

AUTOTUNE = tf.data.AUTOTUNE
# A bounded file-name shuffle buffer: `_directory_dataset` pre-shuffles the
# whole list in Python, so the buffer only has to re-mix between epochs.
_MAX_FILE_SHUFFLE_BUFFER = 1_000_000


# ----------------------------------------------------------------------------
# Per-image ops (pure TF, used inside Dataset.map).
# ----------------------------------------------------------------------------


def resize_short_side(image: tf.Tensor, short_side: int) -> tf.Tensor:
    """Resizes so the smaller side equals `short_side`, keeping the aspect ratio.

    Sec. 3.5: "we resize the smaller dimension of each image to 512 pixels with
    the original image ratio". Small images are upscaled too, so even a 1x1
    image yields a valid crop.

    Args:
      image: float32 `[H, W, C]`.
      short_side: Target size of min(H, W).

    Returns:
      float32 `[H', W', C]` with min(H', W') == short_side, clipped to [0, 1].
    """
    shape = tf.shape(image)
    height = tf.cast(shape[0], tf.float32)
    width = tf.cast(shape[1], tf.float32)
    scale = short_side / tf.minimum(height, width)
    # Round the long side but pin the short one exactly, so float error can
    # never leave it one pixel below the crop size.
    new_height = tf.where(height <= width, short_side, tf.cast(tf.round(height * scale), tf.int32))
    new_width = tf.where(height <= width, tf.cast(tf.round(width * scale), tf.int32), short_side)
    # Antialiasing matters when shrinking multi-megapixel photos; it is a
    # no-op for upscaling.
    resized = tf.image.resize(
        image, tf.stack([new_height, new_width]), method="bilinear", antialias=True
    )
    return tf.clip_by_value(resized, 0.0, 1.0)


def random_crop(image: tf.Tensor, crop_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Stateless random square crop, reproducible for a given seed.

    Args:
      image: `[H, W, C]` with H, W >= crop_size.
      crop_size: Side of the crop.
      seed: int32/int64 `[2]` stateless seed.

    Returns:
      `[crop_size, crop_size, C]`.
    """
    channels = image.shape[-1] if image.shape[-1] is not None else tf.shape(image)[-1]
    return tf.image.stateless_random_crop(image, [crop_size, crop_size, channels], seed=seed)


def builtin_image(seed: tf.Tensor, size: int) -> tf.Tensor:
    """Renders a procedural RGB image: stripes, checkerboard, gradient, blobs or noise.

    Two random patterns with random colours are blended, plus a little pixel
    noise, so the source has varied colour statistics and textures without any
    files or network access (for smoke tests and demos, not for real quality).

    Args:
      seed: int32/int64 `[2]` stateless seed; the same seed gives the same image.
      size: Image side in pixels.

    Returns:
      float32 `[size, size, 3]` in [0, 1].
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    first = _builtin_pattern(seeds[0], size)
    second = _builtin_pattern(seeds[1], size)
    mix = tf.random.stateless_uniform([], seeds[2], 0.0, 0.5)
    noise = tf.random.stateless_normal([size, size, 3], seeds[3], stddev=0.02)
    image = (1.0 - mix) * first + mix * second + noise
    return tf.clip_by_value(image, 0.0, 1.0)


def _builtin_pattern(seed: tf.Tensor, size: int) -> tf.Tensor:
    """One procedural pattern, float32 [size, size, 3] in [0, 1]."""
    s = tf.random.experimental.stateless_split(seed, num=8)

    def uniform(i, shape=(), lo=0.0, hi=1.0):
        return tf.random.stateless_uniform(shape, s[i], lo, hi)

    colors = uniform(1, [4, 3])
    coords = (tf.range(size, dtype=tf.float32) + 0.5) / size
    y, x = tf.meshgrid(coords, coords, indexing="ij")
    angle = uniform(2, lo=0.0, hi=np.pi)
    # Coordinate along a random direction, for stripes and gradients.
    u = x * tf.cos(angle) + y * tf.sin(angle)
    v = -x * tf.sin(angle) + y * tf.cos(angle)

    def blend(t, c0, c1):
        return c0 * (1.0 - t[..., None]) + c1 * t[..., None]

    def stripes():
        freq = uniform(3, lo=2.0, hi=16.0)
        sharpness = uniform(4, lo=1.0, hi=20.0)
        t = tf.sigmoid(sharpness * tf.sin(2.0 * np.pi * freq * u + uniform(5, hi=6.28)))
        return blend(t, colors[0], colors[1])

    def checkerboard():
        cells = tf.floor(uniform(3, lo=2.0, hi=12.0))
        t = tf.math.floormod(tf.floor(u * cells) + tf.floor(v * cells), 2.0)
        return blend(t, colors[0], colors[1])

    def gradient():
        linear = tf.clip_by_value(u - tf.reduce_min(u), 0.0, 1.0)
        center = uniform(3, [2])
        radial = tf.clip_by_value(tf.sqrt((x - center[0]) ** 2 + (y - center[1]) ** 2), 0.0, 1.0)
        t = tf.where(uniform(4) < 0.5, linear, radial)
        return blend(t, colors[0], blend(t, colors[1], colors[2]))

    def blobs():
        count = 6
        centers = uniform(3, [count, 1, 1, 2])
        sigmas = uniform(4, [count, 1, 1], lo=0.04, hi=0.25)
        blob_colors = uniform(5, [count, 3])
        dist2 = (x - centers[..., 0]) ** 2 + (y - centers[..., 1]) ** 2
        weights = tf.exp(-dist2 / (2.0 * sigmas**2))  # [count, size, size]
        image = tf.broadcast_to(colors[0], [size, size, 3])
        for k in range(count):
            image = blend(weights[k], image, blob_colors[k])
        return image

    def noise():
        # Smooth value noise: a coarse random grid upsampled bilinearly.
        coarse = uniform(3, [8, 8, 1])
        t = tf.image.resize(coarse, [size, size], method="bilinear")[..., 0]
        fine = uniform(4, [size, size])
        t = 0.8 * t + 0.2 * fine
        return blend(t, colors[0], colors[1])

    kind = tf.random.stateless_uniform([], s[0], 0, 5, dtype=tf.int32)
    image = tf.switch_case(kind, [stripes, checkerboard, gradient, blobs, noise])
    image.set_shape([size, size, 3])
    return image


# ----------------------------------------------------------------------------
# Datasets.
# ----------------------------------------------------------------------------


def make_image_dataset(
    source: str,
    cfg: DataConfig,
    seed: int | None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Infinite, shuffled dataset of random training crops from one source.

    Sources:
      * a directory: every jpg/jpeg/png/bmp/webp below it (recursive). Files
        are checked by `scan_image_files` first (if `cfg.validate_files`);
        files that fail to decode at run time are skipped with a warning.
      * `tfds:<name>` or `tfds:<name>:<split>` (default split `train`): the
        `image` feature of any TFDS image dataset, e.g.
        `tfds:places365_small`. The split may itself contain colons
        (`tfds:cifar10:train[:10%]`).
      * `builtin`: procedural images from `builtin_image`, infinite and
        seeded; needs no files or network.

    Every image is resized so its smaller side is `cfg.resize_short_side`,
    then randomly cropped to `cfg.crop_size` (Sec. 3.5).

    Args:
      source: Source string as above.
      cfg: Pipeline configuration.
      seed: Seed of this stream (None = random); content and style streams
        should get different seeds.
      input_context: If given, this pipeline reads only its shard
        (`input_pipeline_id` of `num_input_pipelines`).

    Returns:
      Unbatched `tf.data.Dataset` of float32 `[crop, crop, 3]` in [0, 1].

    Raises:
      FileNotFoundError / NotADirectoryError: Missing directory.
      ValueError: Empty directory, no readable images, or unknown source.
    """
    if seed is None:
        seed = random.randrange(2**31)
    num_pipelines, pipeline_id = 1, 0
    if input_context is not None:
        num_pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
    # Every input pipeline needs its own shuffle order, crops and builtin images.
    seed = _derive_seed(seed, pipeline_id)

    if source == BUILTIN_SOURCE:
        ds = _builtin_dataset(cfg, seed)
    elif source.startswith(TFDS_PREFIX):
        ds = _tfds_dataset(source, cfg, seed, num_pipelines, pipeline_id, input_context)
    elif os.path.isdir(source) or not os.path.exists(source):
        # A missing path lands here too, so list_images names it in the error.
        ds = _directory_dataset(source, cfg, seed, num_pipelines, pipeline_id)
    else:
        raise ValueError(
            f"Unknown image source {source!r}: expected a directory, "
            f"'{TFDS_PREFIX}<name>[:<split>]' or '{BUILTIN_SOURCE}'."
        )
    if cfg.seed is None:
        # Without a seed nothing is reproducible anyway, so let parallel maps
        # return elements as soon as they are ready.
        options = tf.data.Options()
        options.deterministic = False
        ds = ds.with_options(options)
    return ds


def make_pair_dataset(
    cfg: DataConfig,
    batch_size: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batches of (content, style) crops for training.

    The two streams are shuffled independently (different seeds, reshuffled
    each epoch) and zipped, so over time every content can meet every style.
    Usable directly or inside `strategy.distribute_datasets_from_function`:

        strategy.distribute_datasets_from_function(
            lambda ctx: make_pair_dataset(
                cfg, ctx.get_per_replica_batch_size(cfg.batch_size), ctx))

    Args:
      cfg: Pipeline configuration.
      batch_size: Batch size of this pipeline; defaults to the per-replica
        share of `cfg.batch_size` when `input_context` is given, else to
        `cfg.batch_size`.
      input_context: `tf.distribute.InputContext`; each input pipeline then
        reads its own shard of the files with its own random seeds.

    Returns:
      `tf.data.Dataset` of dicts `{"content": [B, crop, crop, 3],
      "style": [B, crop, crop, 3]}`, float32 in [0, 1], static batch size B.
    """
    if batch_size is None:
        batch_size = (
            input_context.get_per_replica_batch_size(cfg.batch_size)
            if input_context is not None
            else cfg.batch_size
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    base_seed = cfg.seed if cfg.seed is not None else random.randrange(2**31)
    content = make_image_dataset(cfg.content_source, cfg, _derive_seed(base_seed, 0), input_context)
    style = make_image_dataset(cfg.style_source, cfg, _derive_seed(base_seed, 1), input_context)
    ds = tf.data.Dataset.zip({"content": content, "style": style})
    # Static batch dimension for tf.function / XLA; the streams are infinite so
    # nothing is actually dropped.
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(AUTOTUNE)


def _preprocess(image: tf.Tensor, cfg: DataConfig, seed: tf.Tensor) -> tf.Tensor:
    """Resize short side + random crop: float32 [crop, crop, 3]."""
    image = resize_short_side(image, cfg.resize_short_side)
    image = random_crop(image, cfg.crop_size, seed)
    image.set_shape([cfg.crop_size, cfg.crop_size, 3])
    return image


def _element_seeds(seed: int) -> tf.data.Dataset:
    """Infinite stream of stateless `[2]` seeds, new ones after every repeat."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def _directory_dataset(
    directory: str, cfg: DataConfig, seed: int, num_pipelines: int, pipeline_id: int
) -> tf.data.Dataset:
    files, orientations = list_directory(directory, cfg.validate_files, cfg.skip_unreadable)
    # A full Python shuffle mixes the whole list once; the tf.data buffer below
    # then only needs to reshuffle between epochs.
    order = np.random.default_rng(seed).permutation(len(files))
    files = [files[i] for i in order]
    orientations = [orientations[i] for i in order]
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files, tf.string), tf.constant(orientations, tf.int32))
    )
    if num_pipelines > 1:
        if len(files) >= num_pipelines:
            ds = ds.shard(num_pipelines, pipeline_id)
        else:
            # Too few files to split; pipelines still differ by their seeds.
            logging.warning(
                "Only %d files in %s for %d input pipelines; not sharding.",
                len(files),
                directory,
                num_pipelines,
            )
    buffer = min(len(files), _MAX_FILE_SHUFFLE_BUFFER)
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, _element_seeds(seed))

    def load(path_and_orientation, crop_seed):
        path, orientation = path_and_orientation
        image = decode_image(tf.io.read_file(path), min_short_side=cfg.resize_short_side)
        image = apply_exif_orientation(image, orientation)
        return _preprocess(image, cfg, crop_seed)

    ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    # Safety net for files that passed (or skipped) the PIL scan but fail in
    # TF. Repeating after it means a directory where every file fails yields
    # an empty dataset instead of an endless retry loop.
    ds = ds.ignore_errors(log_warning=True)
    return ds.repeat()


def _tfds_dataset(
    source: str,
    cfg: DataConfig,
    seed: int,
    num_pipelines: int,
    pipeline_id: int,
    input_context: tf.distribute.InputContext | None,
) -> tf.data.Dataset:
    import tensorflow_datasets as tfds  # Heavy import, only needed here.

    name, _, split = source[len(TFDS_PREFIX) :].partition(":")
    split = split or "train"
    if not name:
        raise ValueError(f"Missing dataset name in TFDS source {source!r}.")
    builder = tfds.builder(name)
    features = builder.info.features
    if "image" not in features.keys():
        raise ValueError(
            f"TFDS dataset {name!r} has no 'image' feature; features are {list(features.keys())}."
        )
    feature = features["image"]
    # Shuffling encoded bytes keeps the buffer small; decoding happens after.
    encoded = isinstance(feature, tfds.features.Image)
    decoders = {"image": tfds.decode.SkipDecoding()} if encoded else None

    def load(read_context):
        return tfds.load(
            name,
            split=split,
            shuffle_files=True,
            decoders=decoders,
            read_config=tfds.ReadConfig(shuffle_seed=seed, input_context=read_context),
        )

    try:
        ds = load(input_context)
    except ValueError as e:
        if input_context is None:
            raise
        # TFDS shards by file and refuses when there are fewer files than
        # pipelines; fall back to sharding examples.
        logging.warning("TFDS file sharding failed (%s); sharding examples instead.", e)
        ds = load(None).shard(num_pipelines, pipeline_id)

    ds = ds.map(lambda example: example["image"], num_parallel_calls=AUTOTUNE)
    ds = ds.shuffle(cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, _element_seeds(seed))

    def preprocess(image, crop_seed):
        if encoded:
            image = decode_image(image, min_short_side=cfg.resize_short_side)
        else:
            image = to_rgb(tf.image.convert_image_dtype(image, tf.float32))
        return _preprocess(image, cfg, crop_seed)

    ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE)
    ds = ds.ignore_errors(log_warning=True)
    return ds.repeat()


def _builtin_dataset(cfg: DataConfig, seed: int) -> tf.data.Dataset:
    def render(index):
        # Element i of stream `seed` is a pure function of (seed, i).
        image_seed = tf.stack([tf.constant(seed, tf.int64), index])
        crop_seed = tf.stack([tf.constant(seed, tf.int64), -1 - index])
        image = builtin_image(image_seed, cfg.builtin_size)
        return _preprocess(image, cfg, crop_seed)

    return tf.data.Dataset.counter().map(render, num_parallel_calls=AUTOTUNE)
