"""Tensor helpers shared by the model, losses and export: input checks, padding, masks.

Backend-neutral (`keras.ops` only). Checks that need run-time values inside a
TensorFlow graph are added by the TF-only `tf_checks` module at the edges.
"""

import keras

# VGG-19 to relu4_1 has three 2x2 max pools: inputs are padded to this.
ENCODER_STRIDE = 8
# Below this the relu4_1 map is 1 x 1 and a covariance is meaningless.
MIN_IMAGE_SIZE = 16
# Tolerance of the [0, 1] range check: resampling may overshoot slightly,
# uint8 images (0..255) are what it must catch.
RANGE_TOLERANCE = 0.01


def range_message(name):
    """The message of a failed [0, 1] check, shared with the in-graph assertions."""
    return f"{name} values must lie in [0, 1]; uint8-range images must be divided by 255"


def concrete_value(x):
    """`x` as a NumPy array, or None while a graph is traced (`tf.function`, `jax.jit`).

    Value checks run where values exist (eager TensorFlow, JAX outside a
    transformation, NumPy inputs) and are skipped while tracing, where
    asking for them raises: TensorFlow's symbolic tensors a
    `NotImplementedError`, JAX tracers a `TypeError`.
    """
    if keras.backend.is_keras_tensor(x):
        return None
    try:
        return keras.ops.convert_to_numpy(x)
    except (TypeError, RuntimeError):
        return None


def static_shape(x):
    """The static shape of `x` as a tuple (None for unknown sizes); None if the rank is unknown."""
    try:
        return tuple(x.shape)
    except ValueError:  # A TensorFlow graph tensor of unknown rank.
        return None


def validate_images(images, name):
    """Checks a `[B, H, W, 3]` float batch in [0, 1] and returns it as float32.

    Static problems (dtype, rank, channels, size) raise `ValueError` at once.
    The value range raises `ValueError` when the values are concrete; while a
    graph is traced they are not, and `tf_checks.check_images` adds the range
    and size checks to TensorFlow graphs as assertions with the same message.
    """
    images = keras.ops.convert_to_tensor(images)
    dtype = keras.backend.standardize_dtype(images.dtype)
    if dtype.startswith(("int", "uint")):
        raise ValueError(
            f"{name} must be float32 in [0, 1], got {dtype}; "
            "convert uint8 images with x / 255 (or tf.image.convert_image_dtype)."
        )
    images = keras.ops.cast(images, "float32")
    shape = static_shape(images)
    if shape is None or len(shape) != 4:
        raise ValueError(
            f"{name} must be a [B, H, W, 3] batch (rank 4), got shape {images.shape}; "
            "add a batch axis with x[None] for a single image."
        )
    if shape[-1] is not None and shape[-1] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels, got {shape[-1]} (shape {shape}).")
    for axis, size in (("height", shape[1]), ("width", shape[2])):
        if size is not None and size < MIN_IMAGE_SIZE:
            raise ValueError(f"{name} {axis} must be at least {MIN_IMAGE_SIZE} pixels, got {size}.")
    extremes = concrete_value(keras.ops.stack([keras.ops.min(images), keras.ops.max(images)]))
    if extremes is not None:
        vmin, vmax = float(extremes[0]), float(extremes[1])
        if vmin < -RANGE_TOLERANCE or vmax > 1.0 + RANGE_TOLERANCE:
            raise ValueError(f"{range_message(name)} (got min {vmin:.3g}, max {vmax:.3g}).")
    return images


def validate_mask(mask, images, name):
    """Returns a `[B, H, W, 1]` float32 mask matching `images` `[B, H, W, 3]`.

    Accepts `[H, W]`, `[B, H, W]` or `[B, H, W, 1]`; weights in [0, 1]. A size
    known only at run time is compared by `tf_checks.check_mask`.
    """
    mask = keras.ops.cast(keras.ops.convert_to_tensor(mask), "float32")
    shape = static_shape(mask)
    rank = None if shape is None else len(shape)
    if rank == 2:
        mask = mask[None, :, :, None]
    elif rank == 3:
        mask = mask[..., None]
    elif rank != 4 or (shape[-1] is not None and shape[-1] != 1):
        raise ValueError(
            f"{name} must be [H, W], [B, H, W] or [B, H, W, 1], got shape {mask.shape}."
        )
    m_hw, i_hw = static_shape(mask)[1:3], static_shape(images)[1:3]
    if None not in m_hw + i_hw and m_hw != i_hw:
        raise ValueError(f"{name} of size {m_hw} does not match its image of size {i_hw}.")
    batch = keras.ops.shape(images)[0]
    m_shape = keras.ops.shape(mask)
    return keras.ops.broadcast_to(mask, (batch, m_shape[1], m_shape[2], 1))


def pad_to_multiple(images, multiple=ENCODER_STRIDE):
    """Reflect-pads bottom/right of `[B, H, W, C]` so H and W divide by `multiple`.

    Reflection (not zeros) keeps the padded border statistically like the
    image, so the covariance and the decoder see no artificial edge.
    """
    shape = keras.ops.shape(images)
    # `(multiple - n % multiple) % multiple`, not `(-n) % multiple`: the same
    # number, but only floor division gives it for a negative operand, and
    # the ONNX converter maps FloorMod to a truncating remainder (the web
    # model then cropped 61 rows to 56).
    pad_h = (multiple - shape[1] % multiple) % multiple
    pad_w = (multiple - shape[2] % multiple) % multiple
    return keras.ops.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="reflect")


def crop_to(images, like):
    """Crops `[B, H', W', C]` to the height and width of `like` `[B, H, W, ...]`."""
    shape = keras.ops.shape(like)
    return images[:, : shape[1], : shape[2], :]


def mask_to_features(mask, multiple=ENCODER_STRIDE):
    """Pixel mask `[B, H, W, 1]` -> per-feature-pixel weights `[B, H/8, W/8, 1]`.

    Average pooling keeps the fraction of each 8 x 8 cell that is masked, so a
    region boundary gives fractional weights instead of aliasing.
    """
    padded = pad_to_multiple(mask, multiple)
    return keras.ops.average_pool(padded, multiple, multiple, padding="valid")


def pixel_gram(a, b):
    """`a^T b` per example, summed over pixels: `[B, N, C]`, `[B, N, D]` -> `[B, C, D]`.

    An einsum rather than `matmul(transpose(a), b)`: TensorFlow's eager
    transpose copies the whole `[B, N, C]` map (+0.5 GiB for the relu4_1 map
    of a 4096 x 4096 image) while its einsum contracts the pixel axis in
    place, like `matmul(transpose_a=True)`; XLA (JAX) folds either form.
    """
    return keras.ops.einsum("bnc,bnd->bcd", a, b)


def encode(encoder, images, name, mask=None, output_all=True):
    """The encoder path of every model: validate, reflect-pad, VGG features, feature mask.

    Args:
      encoder: a `VGGEncoder`.
      images: `[B, H, W, 3]` in [0, 1].
      name: what the images are (`"content"`, `"style"`), for error messages.
      mask: optional `[B, H, W]`-like pixel weights (see `validate_mask`).
      output_all: all four maps relu1_1..relu4_1, or relu4_1 alone.

    Returns:
      `(images, features, feature_mask)`: the validated float32 images, the
      features of the padded images (a list of four maps or one
      `[B, ceil(H/8), ceil(W/8), 512]` map), and the mask at the relu4_1
      resolution `[B, ceil(H/8), ceil(W/8), 1]` or None.
    """
    images = validate_images(images, name)
    features = encoder(pad_to_multiple(images), output_all=output_all)
    feature_mask = None
    if mask is not None:
        feature_mask = mask_to_features(validate_mask(mask, images, f"{name}_mask"))
    return images, features, feature_mask


def adain(features, mean, std, epsilon=1e-5):
    """Adaptive instance normalisation [11]: per image and channel, move to `mean` and `std`.

    `AdaIN = std (x - mu(x)) / sigma(x) + mean`, the statistics of `x` taken
    over the spatial axes. The baseline passes a style's statistics, the
    `"adain"` fusion ablation (Fig. 8) the style vectors `v_c`, `v_r`.

    Args:
      features: `[B, h, w, C]`.
      mean, std: target statistics, broadcastable to `[B, 1, 1, C]`.
      epsilon: variance floor of `sigma(x)`.

    Returns:
      `[B, h, w, C]`.
    """
    mu, var = keras.ops.moments(features, axes=[1, 2], keepdims=True)
    return (features - mu) * keras.ops.rsqrt(var + epsilon) * std + mean


def track_layer_list(owner, prefix, layer_list):
    """Names each layer of a list as an attribute of `owner`; returns the list.

    Keras 3 tracks layer lists for `.keras` saving but leaves them out of the
    object graph TensorFlow's `train.Checkpoint` walks, so their variables
    would be silently missing from training checkpoints. Attributes are walked.
    """
    for i, layer in enumerate(layer_list):
        setattr(owner, f"{prefix}_{i}", layer)
    return layer_list
