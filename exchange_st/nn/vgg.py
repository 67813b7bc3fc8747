"""Fixed VGG-19 encoder up to relu4_1 (Sec. 3.1) shared by the model and the losses."""

import os

import h5py
import keras

from exchange_st.nn.ops import track_layer_list

# Keras VGG-19 layer names of the four feature levels the paper uses: the
# encoder output (relu4_1) and the Gram-loss layers L of Eq. 4.
VGG_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
FEATURE_NAMES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# Mean activation of each level over the 30 shared evaluation images with the
# Keras ImageNet weights. Dividing by them gives features of mean ~1, the
# convention of the normalised VGG used by AdaIN [11] whose losses the paper
# follows; without it relu4_1 values are in the hundreds, the perceptual terms
# dwarf L_rec and L_com by six orders of magnitude and the 1/2/5/7 weights of
# Eq. 7 lose their meaning (docs/design.md, "Feature scale").
FEATURE_SCALES = (23.27, 128.36, 125.01, 467.39)
# The same for randomly initialised VGG (Glorot kernels, zero biases) on
# uniform-noise images: test models then see features of the same
# magnitude as trained ones instead of a relu4_1 ~1/700 as large.
RANDOM_FEATURE_SCALES = (8.57, 5.84, 3.03, 0.64)

# Caffe-style VGG preprocessing: BGR channel order, ImageNet means, 0..255.
_BGR_MEANS = (103.939, 116.779, 123.68)

WEIGHTS_HELP = (
    "Pass the path of a local Keras VGG-19 'notop' h5 weights file instead "
    "(argument vgg_weights=..., flag --vgg_weights=...), e.g. "
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 or its truncation "
    "vgg19_to_relu4_1_float16.h5."
)


def read_h5_layer_weights(path, layer_names):
    """Reads `{layer name: [kernel, bias]}` (float32) from a legacy Keras h5 weights file.

    The layout of `Model.save_weights("x.h5")` in Keras 2: a root attribute
    `layer_names` and one group per layer whose attribute `weight_names`
    lists its datasets in `get_weights()` order. Files truncated after
    `block4_conv1` (e.g. `vgg19_to_relu4_1_float16.h5`, float16) hold all the
    encoder needs but fail Keras' own loader, which expects every layer of
    the full model in order; here layers are found by name instead.

    Raises:
      ValueError: a requested layer is not in the file.
    """
    with h5py.File(path, "r") as f:
        # A whole saved model nests the weights under "model_weights".
        group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        stored = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        weights = {}
        for name in layer_names:
            if name not in stored:
                raise ValueError(
                    f"VGG-19 weights file {path!r} has no layer {name!r}, which the "
                    f"encoder up to relu4_1 needs (the file holds {', '.join(stored)})."
                )
            layer = group[name]
            weights[name] = [
                layer[n.decode() if isinstance(n, bytes) else n][()].astype("float32")
                for n in layer.attrs["weight_names"]
            ]
    return weights


def write_truncated_weights(encoder, path, dtype="float16"):
    """Writes the encoder's convolutions in the layout `read_h5_layer_weights` reads.

    The layout of `vgg19_to_relu4_1_float16.h5` (legacy Keras h5, one group
    per layer up to `block4_conv1`), so a release can carry the exact VGG
    its decoder was trained with, even a random one (tests).

    Args:
      encoder: a `VGGEncoder`.
      path: the `.h5` file to write.
      dtype: storage dtype; `"float16"` halves the file, and is exact for
        weights that were read from a float16 file.
    """
    convs = [layer for layer in encoder.blocks if isinstance(layer, keras.layers.Conv2D)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in convs]
        for layer in convs:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, w in zip(names, layer.weights):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(w).astype(dtype))


def _load_by_name(vgg, path):
    """Sets the convolutions of `vgg` up to `block4_conv1` from an h5 file, by layer name."""
    convs = []
    for layer in vgg.layers:
        if isinstance(layer, keras.layers.Conv2D):
            convs.append(layer)
        if layer.name == VGG_LAYERS[-1]:
            break
    weights = read_h5_layer_weights(path, [layer.name for layer in convs])
    for layer in convs:
        expected = [tuple(w.shape) for w in layer.weights]
        got = [w.shape for w in weights[layer.name]]
        if got != expected:
            raise ValueError(
                f"VGG-19 weights file {path!r} gives layer {layer.name!r} weights of "
                f"shapes {got}, expected {expected}."
            )
        layer.set_weights(weights[layer.name])


def _build_vgg19(weights):
    """Returns a full notop `keras.applications.VGG19` with the requested weights."""
    if weights == "imagenet":
        try:
            return keras.applications.VGG19(
                include_top=False, weights="imagenet", input_shape=(None, None, 3)
            )
        except Exception as e:  # Download failures surface as many types.
            # ConnectionError (an OSError): the commands report it in one line.
            raise ConnectionError(
                f"Could not obtain the ImageNet VGG-19 weights ({e}). " + WEIGHTS_HELP
            ) from e
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    if weights is None:
        return vgg
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"VGG-19 weights file not found: {path!r}. Use vgg_weights='imagenet' "
            "to download them, None for random weights (tests only), or the path "
            "of a Keras notop h5 file."
        )
    try:
        vgg.load_weights(path)
        return vgg
    except Exception as e:  # noqa: BLE001 - h5py and Keras raise many types.
        full_error = e
    # Keras' loader wants every layer of the whole VGG-19 in order; a file
    # truncated after block4_conv1 loads by name (the deeper layers keep
    # random weights and are never used).
    try:
        _load_by_name(vgg, path)
    except (OSError, KeyError) as e:
        raise ValueError(
            f"Could not load VGG-19 weights from {path!r} ({full_error}; by layer "
            f"name: {e}). Expected the Keras 'notop' h5 layout "
            "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5) or its truncation "
            "after block4_conv1."
        ) from e
    return vgg


@keras.saving.register_keras_serializable(package="exchange_st")
class VGGEncoder(keras.layers.Layer):
    """Frozen VGG-19 up to relu4_1, returning the four feature levels of Eq. 4.

    The encoder takes RGB images in [0, 1] and does the Keras (Caffe) VGG
    preprocessing itself, so callers never see VGG's input convention.

    Args:
      vgg_weights: `"imagenet"` (Keras download, the default for users), the
        path of a Keras notop h5 weights file (whole, or truncated after
        `block4_conv1` such as `vgg19_to_relu4_1_float16.h5`), or `None`
        (random weights, for tests). Weights never train: the encoder is
        fixed (Sec. 3.1).
      feature_scales: divisors of the four levels. `None` picks
        `FEATURE_SCALES` for pretrained weights and `RANDOM_FEATURE_SCALES`
        for random ones, so features have mean ~1 either way. The
        resolved values are part of the config, so a model restored without
        its weights file keeps the scaling it was trained with.

    Call arguments:
      images: `[B, H, W, 3]` float RGB in [0, 1].

    Returns:
      A list `[relu1_1, relu2_1, relu3_1, relu4_1]` of shapes
      `[B, H, W, 64]`, `[B, H/2, W/2, 128]`, `[B, H/4, W/4, 256]`,
      `[B, H/8, W/8, 512]` (floor division by the 2x2 max pools).
    """

    def __init__(self, vgg_weights="imagenet", feature_scales=None, **kwargs):
        super().__init__(**kwargs)
        self.vgg_weights = vgg_weights
        if feature_scales is None:
            feature_scales = FEATURE_SCALES if vgg_weights is not None else RANDOM_FEATURE_SCALES
        if len(feature_scales) != len(VGG_LAYERS):
            raise ValueError(f"feature_scales needs 4 values, got {feature_scales!r}")
        feature_scales = tuple(float(v) for v in feature_scales)
        # Also a (frozen) variable: checkpoints then carry the scaling, so a
        # model rebuilt with vgg_weights=None and restored from a checkpoint
        # of a pretrained-VGG run divides by the right values.
        self.scales = self.add_weight(
            shape=(len(VGG_LAYERS),),
            initializer=keras.initializers.Constant(feature_scales),
            trainable=False,
            name="feature_scales",
        )
        vgg = _build_vgg19(vgg_weights)
        # Copy only the layers up to relu4_1 so the deeper (unused) layers'
        # weights are neither stored nor computed.
        self.blocks = []
        for layer in vgg.layers[1:]:
            if isinstance(layer, keras.layers.Conv2D):
                conv = keras.layers.Conv2D(
                    layer.filters,
                    layer.kernel_size,
                    padding="same",
                    activation="relu",
                    name=layer.name,
                    dtype=self.dtype_policy,
                )
                conv.build((None, None, None, layer.kernel.shape[2]))
                conv.set_weights(layer.get_weights())
                conv.trainable = False
                self.blocks.append(conv)
            else:
                self.blocks.append(
                    keras.layers.MaxPooling2D(2, name=layer.name, dtype=self.dtype_policy)
                )
            if layer.name == VGG_LAYERS[-1]:
                break
        track_layer_list(self, "block", self.blocks)
        self.trainable = False

    @property
    def feature_scales(self):
        """The divisors in use: the variable's values, so restored ones show."""
        return tuple(float(v) for v in keras.ops.convert_to_numpy(self.scales))

    def build(self, input_shape=None):
        self.built = True

    def preprocess(self, images):
        """Maps `[B, H, W, 3]` RGB in [0, 1] to Caffe-style BGR minus ImageNet means."""
        bgr = keras.ops.flip(keras.ops.cast(images, self.compute_dtype), axis=-1) * 255.0
        return bgr - keras.ops.convert_to_tensor(_BGR_MEANS, dtype=self.compute_dtype)

    def call(self, images, output_all=True):
        x = self.preprocess(images)
        feats = []
        for layer in self.blocks:
            x = layer(x)
            if layer.name in VGG_LAYERS:
                feats.append(x / keras.ops.cast(self.scales[len(feats)], x.dtype))
        return feats if output_all else feats[-1]

    def get_config(self):
        config = super().get_config()
        # The weights travel with the saved model's variables; re-creating the
        # layer from config must not download or need a file, so the config
        # records a random initialiser which the loaded variables overwrite.
        config.update({"vgg_weights": None, "feature_scales": self.feature_scales})
        return config
