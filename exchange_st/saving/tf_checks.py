"""In-graph TensorFlow input checks for the TF edges (SavedModel signatures, training input).

The backend-neutral core (`ops.validate_images`, `ops.validate_mask`) raises
`ValueError` for everything it can see: static shapes always, values when
they are concrete. Inside a `tf.function` values and unknown sizes exist
only at run time, so these wrappers add the same checks as `tf.debugging`
assertions (`InvalidArgumentError`, same messages) there.
"""

import tensorflow as tf

from exchange_st.nn import ops


def check_images(images, name):
    """`ops.validate_images`, plus run-time range and size assertions in graph mode.

    Args:
      images: `[B, H, W, 3]` float images in [0, 1].
      name: how messages call the argument (e.g. `"content"`).

    Returns:
      The float32 images; in a graph, with the assertions as control
      dependencies so that they run before anything that uses them.
    """
    images = ops.validate_images(images, name)
    if tf.executing_eagerly():
        return images
    lo, hi = -ops.RANGE_TOLERANCE, 1.0 + ops.RANGE_TOLERANCE
    message = ops.range_message(name)
    checks = [
        tf.debugging.assert_greater_equal(tf.reduce_min(images), lo, message=message),
        tf.debugging.assert_less_equal(tf.reduce_max(images), hi, message=message),
        tf.debugging.assert_greater_equal(
            tf.shape(images)[1:3],
            ops.MIN_IMAGE_SIZE,
            message=f"{name} height and width must be at least {ops.MIN_IMAGE_SIZE}",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def check_mask(mask, images, name):
    """Asserts in graph mode that a mask's height and width are its image's.

    Args:
      mask: `[H, W]`, `[B, H, W]` or `[B, H, W, 1]` weights.
      images: `[B, H, W, 3]` image batch the mask belongs to.
      name: how the message calls the mask.

    Returns:
      `mask` unchanged (as a tensor); the model still validates its layout.
    """
    mask = tf.convert_to_tensor(mask)
    if tf.executing_eagerly() or mask.shape.rank not in (2, 3, 4):
        # Eager sizes are static and compared by `ops.validate_mask`, as is
        # a bad rank.
        return mask
    rank = mask.shape.rank
    start = 1 if rank == 4 else rank - 2
    check = tf.debugging.assert_equal(
        tf.shape(mask)[start : start + 2],
        tf.shape(images)[1:3],
        message=f"{name} height and width must match its image",
    )
    with tf.control_dependencies([check]):
        return tf.identity(mask)


def check_pair_dataset(dataset):
    """Maps `check_images` over the `"content"` and `"style"` of a training `tf.data.Dataset`.

    `fit` traces the model into a graph, where `ops.validate_images` cannot
    see values; this puts the range and size assertions in the input.
    """

    def check(batch):
        return {
            **batch,
            "content": check_images(batch["content"], "content"),
            "style": check_images(batch["style"], "style"),
        }

    return dataset.map(check)
