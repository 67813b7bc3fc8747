"""Tensor helpers shared by the model, losses and export: input checks, padding, masks."""

import tensorflow as tf

# VGG-19 to relu4_1 has three 2x2 max pools: inputs are padded to this.
ENCODER_STRIDE = 8
# Below this the relu4_1 map is 1 x 1 and a covariance is meaningless.
MIN_IMAGE_SIZE = 16
# Tolerance of the [0, 1] range check: resampling may overshoot slightly,
# uint8 images (0..255) are what it must catch.
_RANGE_TOLERANCE = 0.01


def validate_images(images, name):
    """Checks a `[B, H, W, 3]` float batch in [0, 1] and returns it as float32.

    Static problems (rank, channels, size) raise `ValueError` at once. The
    value range is checked eagerly with a `ValueError`; inside a `tf.function`
    it becomes a `tf.debugging` assertion with the same message.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype.is_integer:
        raise ValueError(
            f"{name} must be float32 in [0, 1], got {images.dtype.name}; "
            "convert uint8 images with tf.image.convert_image_dtype or x / 255."
        )
    images = tf.cast(images, tf.float32)
    shape = images.shape
    if shape.rank != 4:
        raise ValueError(
            f"{name} must be a [B, H, W, 3] batch (rank 4), got shape {shape}; "
            "add a batch axis with x[None] for a single image."
        )
    if shape[-1] is not None and shape[-1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels, got {shape[-1]} (shape {shape}).")
    for axis, size in (("height", shape[1]), ("width", shape[2])):
        if size is not None and size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"{name} {axis} must be at least {MIN_IMAGE_SIZE} pixels, got {size}."
            )
    lo, hi = -_RANGE_TOLERANCE, 1.0 + _RANGE_TOLERANCE
    message = f"{name} values must lie in [0, 1]; uint8-range images must be divided by 255"
    if tf.executing_eagerly():
        vmin = float(tf.reduce_min(images))
        vmax = float(tf.reduce_max(images))
        if vmin < lo or vmax > hi:
            raise ValueError(f"{message} (got min {vmin:.3g}, max {vmax:.3g}).")
        return images
    checks = [
        tf.debugging.assert_greater_equal(tf.reduce_min(images), lo, message=message),
        tf.debugging.assert_less_equal(tf.reduce_max(images), hi, message=message),
        tf.debugging.assert_greater_equal(
            tf.shape(images)[1:3], MIN_IMAGE_SIZE,
            message=f"{name} height and width must be at least {MIN_IMAGE_SIZE}",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def validate_mask(mask, images, name):
    """Returns a `[B, H, W, 1]` float32 mask matching `images` `[B, H, W, 3]`.

    Accepts `[H, W]`, `[B, H, W]` or `[B, H, W, 1]`; weights in [0, 1].
    """
    mask = tf.cast(tf.convert_to_tensor(mask), tf.float32)
    rank = mask.shape.rank
    if rank == 2:
        mask = mask[None, :, :, None]
    elif rank == 3:
        mask = mask[..., None]
    elif rank != 4 or (mask.shape[-1] is not None and mask.shape[-1] != 1):
        raise ValueError(
            f"{name} must be [H, W], [B, H, W] or [B, H, W, 1], got shape {mask.shape}."
        )
    m_hw, i_hw = mask.shape[1:3], images.shape[1:3]
    if all(d is not None for d in list(m_hw) + list(i_hw)) and tuple(m_hw) != tuple(i_hw):
        raise ValueError(
            f"{name} of size {tuple(m_hw)} does not match its image of size {tuple(i_hw)}."
        )
    if not tf.executing_eagerly():
        check = tf.debugging.assert_equal(
            tf.shape(mask)[1:3], tf.shape(images)[1:3],
            message=f"{name} height and width must match its image",
        )
        with tf.control_dependencies([check]):
            mask = tf.identity(mask)
    batch = tf.shape(images)[0]
    return tf.broadcast_to(mask, tf.stack([batch, tf.shape(mask)[1], tf.shape(mask)[2], 1]))


def pad_to_multiple(images, multiple=ENCODER_STRIDE):
    """Reflect-pads bottom/right of `[B, H, W, C]` so H and W divide by `multiple`.

    Reflection (not zeros) keeps the padded border statistically like the
    image, so the covariance and the decoder see no artificial edge.
    """
    shape = tf.shape(images)
    pad_h = (-shape[1]) % multiple
    pad_w = (-shape[2]) % multiple
    return tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")


def crop_to(images, like):
    """Crops `[B, H', W', C]` to the height and width of `like` `[B, H, W, ...]`."""
    shape = tf.shape(like)
    return images[:, : shape[1], : shape[2], :]


def mask_to_features(mask, multiple=ENCODER_STRIDE):
    """Pixel mask `[B, H, W, 1]` -> per-feature-pixel weights `[B, H/8, W/8, 1]`.

    Average pooling keeps the fraction of each 8 x 8 cell that is masked, so a
    region boundary gives fractional weights instead of aliasing.
    """
    padded = pad_to_multiple(mask, multiple)
    return tf.nn.avg_pool2d(padded, multiple, multiple, "VALID")
