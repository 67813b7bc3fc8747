"""TensorFlow's in-graph image decoding for the tf.data pipeline: bytes to float RGB in [0, 1].

The same conversions as `image_io`'s PIL readers (`to_float_rgb`, EXIF
orientation), as graph ops: PIL inside `Dataset.map` would need
`tf.py_function`, which serialises decoding behind the GIL.
"""

from __future__ import annotations

import tensorflow as tf


def tf_to_rgb(image):
    """`to_float_rgb` in the graph: float32 `[H, W, C]`, C in 1..4 (may be dynamic) -> `[H, W, 3]`."""
    channels = tf.shape(image)[-1]

    def composite(color, alpha):
        return color * alpha + (1.0 - alpha)

    branches = [
        lambda: tf.tile(image[..., :1], [1, 1, 3]),
        lambda: tf.tile(composite(image[..., :1], image[..., 1:2]), [1, 1, 3]),
        lambda: image[..., :3],
        lambda: composite(image[..., :3], image[..., 3:4]),
    ]
    rgb = tf.switch_case(tf.clip_by_value(channels, 1, 4) - 1, branches)
    rgb.set_shape([None, None, 3])
    return rgb


def decode_image(contents, min_short_side: int | None = None):
    """Decodes JPEG/PNG/BMP/GIF/WebP bytes to RGB float in [0, 1].

    16-bit PNGs are scaled by 65535 (not clipped), gray / gray+alpha / RGBA are
    converted by `tf_to_rgb`, and animations keep their first frame. Invalid data
    raises `InvalidArgumentError` at run time, which the datasets drop with
    `ignore_errors`.

    Args:
      contents: Scalar `tf.string` with the encoded file.
      min_short_side: If given, large JPEGs are decoded at 1/2, 1/4 or 1/8
        scale in the DCT domain as long as the smaller side stays >= this; this
        is several times faster than a full decode of a big photo.

    Returns:
      float32 `[H, W, 3]` in [0, 1].
    """

    def decode_jpeg():
        if min_short_side is None:
            return tf.io.decode_jpeg(contents, channels=3)
        shape = tf.image.extract_jpeg_shape(contents)
        short = tf.minimum(shape[0], shape[1])
        # libjpeg's scaled sides are ceil(side / ratio) >= side // ratio.
        index = tf.add_n([tf.cast(short // r >= min_short_side, tf.int32) for r in (2, 4, 8)])
        return tf.switch_case(
            index,
            [lambda r=r: tf.io.decode_jpeg(contents, channels=3, ratio=r) for r in (1, 2, 4, 8)],
        )

    def decode_other():
        # The WebP decoder only emits uint8; everything else decodes straight
        # to float, which scales 16-bit PNGs by 65535 rather than clipping.
        is_webp = tf.logical_and(
            tf.equal(tf.strings.substr(contents, 0, 4), b"RIFF"),
            tf.equal(tf.strings.substr(contents, 8, 4), b"WEBP"),
        )
        image = tf.cond(
            is_webp,
            lambda: tf.image.convert_image_dtype(
                tf.io.decode_image(contents, channels=0, expand_animations=False),
                tf.float32,
            ),
            lambda: tf.io.decode_image(
                contents, channels=0, dtype=tf.float32, expand_animations=False
            ),
        )
        return tf_to_rgb(image)

    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.image.convert_image_dtype(decode_jpeg(), tf.float32),
        decode_other,
    )
    image.set_shape([None, None, 3])
    return image


def apply_exif_orientation(image, orientation):
    """Turns stored pixels upright according to an EXIF orientation tag.

    TF decoders ignore EXIF, so `scan_image_files` reads the tag with PIL and
    the pipeline applies it here; the mapping matches `PIL.ImageOps.exif_transpose`.

    Args:
      image: `[H, W, C]`.
      orientation: int32 scalar EXIF orientation in 1..8 (others = 1).

    Returns:
      `[H, W, C]` or `[W, H, C]` (orientations 5-8 swap the sides).
    """
    branches = [
        lambda: image,  # 1: upright.
        lambda: tf.image.flip_left_right(image),  # 2: mirrored.
        lambda: tf.image.rot90(image, 2),  # 3: upside down.
        lambda: tf.image.flip_up_down(image),  # 4: mirrored vertically.
        lambda: tf.image.transpose(image),  # 5: transposed.
        lambda: tf.image.rot90(image, 3),  # 6: stored 90 deg counter-clockwise.
        lambda: tf.image.rot90(tf.image.transpose(image), 2),  # 7: transverse.
        lambda: tf.image.rot90(image, 1),  # 8: stored 90 deg clockwise.
    ]
    index = tf.where(tf.logical_and(orientation >= 1, orientation <= 8), orientation - 1, 0)
    return tf.switch_case(tf.cast(index, tf.int32), branches)
