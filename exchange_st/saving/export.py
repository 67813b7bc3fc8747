"""Inference export: a model -> a SavedModel that runs on any image size (TFLite: `tflite`)."""

from __future__ import annotations

import dataclasses
import json
import os
import types

import tensorflow as tf
from absl import logging

from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.saving import serialization
from exchange_st.saving import checkpoints, loader, tf_checks
from exchange_st.saving import tflite as tflite_lib

# Written by `export_saved_model` into the SavedModel directory, for provenance
# only: loading the SavedModel needs neither this file nor exchange_st.
EXPORT_CONFIG_FILENAME = "exchange_st_model_config.json"
TFLITE_FILENAME = tflite_lib.TFLITE_FILENAME
DEFAULT_TFLITE_SIZE = tflite_lib.DEFAULT_TFLITE_SIZE
# Constructor arguments of `ExchangeStyleTransfer` that a config may set.
MODEL_CONFIG_KEYS = serialization.constructor_keys(ExchangeStyleTransfer)
# Kept importable from here: the loading functions moved to `checkpoints`.
model_config_of = serialization.model_config_of

SIGNATURE_KEYS = ("serving_default", "stylize_masked", "stylize_uint8")

# Dynamic batch, height and width: one trace serves every image size. Rank
# and channel count are fixed here, so calling a tf.function attribute with
# a wrong rank or channel count fails when it binds its arguments, with the
# offending shape in the message; signature calls skip that binding check and
# are caught by `_checked` inside the graph instead of deep in a convolution.
_FLOAT_IMAGE = tf.TensorSpec([None, None, None, 3], tf.float32)
_UINT8_IMAGE = tf.TensorSpec([None, None, None, 3], tf.uint8)
_MASK = tf.TensorSpec([None, None, None], tf.float32)
_ALPHA = tf.TensorSpec([], tf.float32)
_R_FUSION = tf.TensorSpec([None, None, None, None], tf.float32)


def _spec(spec, name):
    return tf.TensorSpec(spec.shape, spec.dtype, name=name)


def _checked(x, name, expected):
    """Asserts at run time that `x` has rank 4 and 3 channels (or rank 3 for masks).

    Calls through `loaded.signatures[...]` do not check their arguments
    against the signature's shapes, so without this a 4-channel image would
    only fail deep inside the VGG preprocessing with an unrelated message.
    """
    shape = tf.shape(x)
    if expected == "image":
        ok = tf.logical_and(tf.equal(tf.rank(x), 4), tf.equal(shape[-1], 3))
        what = f"{name} must be a [B, H, W, 3] RGB batch; got shape"
    else:
        ok = tf.equal(tf.rank(x), 3)
        what = f"{name} must be a [B, H, W] mask batch; got shape"
    check = tf.debugging.Assert(ok, [what, shape], summarize=8, name=f"check_{name}")
    with tf.control_dependencies([check]):
        return tf.identity(x)


# (content, style, alpha, content_mask, style_mask) of the masked functions.
_MASKED_SIGNATURE = [
    _spec(_FLOAT_IMAGE, "content"),
    _spec(_FLOAT_IMAGE, "style"),
    _ALPHA,
    _spec(_MASK, "content_mask"),
    _spec(_MASK, "style_mask"),
]


class StylizeModule(tf.Module):
    """Inference functions of a trained `ExchangeStyleTransfer`, for any image size.

    Every function has an `input_signature` with unknown batch, height and
    width, so it is traced once and runs any size (>= 16 px per side; sizes
    need not be multiples of 8, the model reflect-pads and crops back).

    Functions (all images float32 RGB in [0, 1] unless noted):
      __call__(content [B, H, W, 3], style [B or 1, H2, W2, 3]) -> `I_s->c`:
        the module itself is called like TF-Hub's style-transfer modules.
      stylize(content [B, H, W, 3], style [B or 1, H2, W2, 3], alpha=1.0)
        -> `I_s->c` `[B, H, W, 3]` in [0, 1] with the Eq. 8 trade-off.
      stylize_masked(content, style, alpha, content_mask [B, H, W],
        style_mask [B or 1, H2, W2]) -> `[B, H, W, 3]`; the analysis only sees
        the masked pixels and the content outside its mask is reconstructed.
      stylize_uint8(content uint8 [B, H, W, 3], style uint8, alpha) -> float
        `[B, H, W, 3]` in [0, 1]; takes `tf.io.decode_image` output directly.
      fused_features(content, style, alpha, content_mask, style_mask)
        -> `R_fusion` `[B, ceil(H/8), ceil(W/8), 512]` (Eq. 8 before rendering).
      render_content(r_fusion, content) -> `[B, H, W, 3]` in [0, 1].
    The last two let several masked styles be blended in feature space and
    rendered once (Fig. 10), as `ExchangeStyleTransfer.stylize_regions` does.

    Input checks: the input signatures fix rank 4 and 3 channels (rank 3 for
    masks). A function attribute rejects other shapes when binding its
    arguments (`TypeError` naming the shape); signature calls do not bind, so
    the graph checks them (`InvalidArgumentError` "content must be a
    [B, H, W, 3] RGB batch; got shape [1 64 64 4]"). Values outside [0, 1]
    (e.g. 0..255 floats: use `stylize_uint8`), sides under 16 px and masks
    whose size differs from their image fail the assertions of `tf_checks`
    (the graph form of the model's own input checks).

    Only the inference path is tracked, so only it is saved: the VGG encoder
    and `model.release_layers()` (the `I_s->c` path). The training-only second
    decoder and Eq. 6's reconstruction layer stay out of the SavedModel; a
    function that read one of them would fail `tf.saved_model.save` with an
    untracked-resource error rather than save it silently.

    Args:
      model: a built `ExchangeStyleTransfer` (weights restored or random).
    """

    def __init__(self, model, name="exchange_st"):
        super().__init__(name=name)
        # A plain namespace is not trackable, so tf.Module does not save the
        # whole model through it; the layers the functions read are tracked below.
        self._held = types.SimpleNamespace(model=model)
        self.encoder = model.encoder
        self.inference_layers = dict(model.release_layers())

    @property
    def model(self):
        """The wrapped `ExchangeStyleTransfer` (not itself saved: see the class docstring)."""
        return self._held.model

    # The graphs are built by plain methods that both the tf.function
    # attributes and the signatures call: a signature wrapping another
    # tf.function would capture its variables under numeric names.
    def _stylize(self, content, style, alpha):
        content = tf_checks.check_images(_checked(content, "content", "image"), "content")
        style = tf_checks.check_images(_checked(style, "style", "image"), "style")
        return self.model.stylize(content, style, alpha)

    def _stylize_masked(self, content, style, alpha, content_mask, style_mask):
        content, style, content_mask, style_mask = self._check_all(
            content, style, content_mask, style_mask
        )
        return self.model.stylize(content, style, alpha, content_mask, style_mask)

    def _stylize_uint8(self, content, style, alpha):
        content = tf.image.convert_image_dtype(_checked(content, "content", "image"), tf.float32)
        style = tf.image.convert_image_dtype(_checked(style, "style", "image"), tf.float32)
        content = tf_checks.check_images(content, "content")
        style = tf_checks.check_images(style, "style")
        return self.model.stylize(content, style, alpha)

    @staticmethod
    def _check_all(content, style, content_mask, style_mask):
        content = tf_checks.check_images(_checked(content, "content", "image"), "content")
        style = tf_checks.check_images(_checked(style, "style", "image"), "style")
        content_mask = _checked(content_mask, "content_mask", "mask")
        style_mask = _checked(style_mask, "style_mask", "mask")
        return (
            content,
            style,
            tf_checks.check_mask(content_mask, content, "content_mask"),
            tf_checks.check_mask(style_mask, style, "style_mask"),
        )

    @tf.function(input_signature=[_spec(_FLOAT_IMAGE, "content"), _spec(_FLOAT_IMAGE, "style")])
    def __call__(self, content, style):
        """`tf.saved_model.load(path)(content, style)`: the stylized batch, as the
        TF-Hub arbitrary-image-stylization modules are called (alpha 1)."""
        return self._stylize(content, style, 1.0)

    @tf.function(
        input_signature=[_spec(_FLOAT_IMAGE, "content"), _spec(_FLOAT_IMAGE, "style"), _ALPHA]
    )
    def stylize(self, content, style, alpha=1.0):
        return self._stylize(content, style, alpha)

    @tf.function(input_signature=_MASKED_SIGNATURE)
    def stylize_masked(self, content, style, alpha, content_mask, style_mask):
        return self._stylize_masked(content, style, alpha, content_mask, style_mask)

    @tf.function(
        input_signature=[_spec(_UINT8_IMAGE, "content"), _spec(_UINT8_IMAGE, "style"), _ALPHA]
    )
    def stylize_uint8(self, content, style, alpha=1.0):
        return self._stylize_uint8(content, style, alpha)

    @tf.function(input_signature=_MASKED_SIGNATURE)
    def fused_features(self, content, style, alpha, content_mask, style_mask):
        content, style, content_mask, style_mask = self._check_all(
            content, style, content_mask, style_mask
        )
        r_fusion, _ = self.model.fused_features(content, style, alpha, content_mask, style_mask)
        return r_fusion

    @tf.function(input_signature=[_spec(_R_FUSION, "r_fusion"), _spec(_FLOAT_IMAGE, "content")])
    def render_content(self, r_fusion, content):
        return self.model.render_content(r_fusion, _checked(content, "content", "image"))

    def signatures(self):
        """The serving signatures, each returning `{"stylized": [B, H, W, 3]}`.

        Signatures cannot have default arguments, so `alpha` must always be
        passed (1.0 = full stylization).
        """

        @tf.function(
            input_signature=[
                _spec(_FLOAT_IMAGE, "content"),
                _spec(_FLOAT_IMAGE, "style"),
                _spec(_ALPHA, "alpha"),
            ]
        )
        def serve(content, style, alpha):
            return {"stylized": self._stylize(content, style, alpha)}

        @tf.function(
            input_signature=[
                _spec(_FLOAT_IMAGE, "content"),
                _spec(_FLOAT_IMAGE, "style"),
                _spec(_ALPHA, "alpha"),
                _spec(_MASK, "content_mask"),
                _spec(_MASK, "style_mask"),
            ]
        )
        def serve_masked(content, style, alpha, content_mask, style_mask):
            stylized = self._stylize_masked(content, style, alpha, content_mask, style_mask)
            return {"stylized": stylized}

        @tf.function(
            input_signature=[
                _spec(_UINT8_IMAGE, "content"),
                _spec(_UINT8_IMAGE, "style"),
                _spec(_ALPHA, "alpha"),
            ]
        )
        def serve_uint8(content, style, alpha):
            stylized = self._stylize_uint8(content, style, alpha)
            # uint8 output too, so `tf.io.encode_png` needs no conversion.
            return {
                "stylized": stylized,
                "stylized_uint8": tf.image.convert_image_dtype(stylized, tf.uint8, saturate=True),
            }

        return {
            "serving_default": serve.get_concrete_function(),
            "stylize_masked": serve_masked.get_concrete_function(),
            "stylize_uint8": serve_uint8.get_concrete_function(),
        }


@dataclasses.dataclass
class ExportResult:
    """What `export_saved_model` wrote.

    Attributes:
      export_dir: the SavedModel directory.
      tflite_path: path of `model.tflite` if a conversion and its check
        succeeded, else None.
      tflite_variant: which conversion produced it (see `tflite._tflite_attempts`),
        e.g. `"fixed 512x512, builtin ops"`; None without a TFLite model.
      tflite_input_size: `(H, W)` the TFLite model is fixed to (content and
        style alike), or None if it takes any size.
      tflite_errors: why each earlier (preferred) conversion was rejected;
        the lines docs/design.md quotes.
    """

    export_dir: str
    tflite_path: str | None = None
    tflite_variant: str | None = None
    tflite_input_size: tuple[int, int] | None = None
    tflite_errors: list[str] = dataclasses.field(default_factory=list)


def export_tflite(export_dir, result=None, size=DEFAULT_TFLITE_SIZE):
    """`tflite.convert` of the SavedModel in `export_dir`, recorded in an `ExportResult`.

    Returns:
      The updated (or a new) `ExportResult`.
    """
    result = result or ExportResult(export_dir=os.fspath(export_dir))
    converted = tflite_lib.convert(export_dir, size)
    result.tflite_path, result.tflite_variant = converted.path, converted.variant
    result.tflite_input_size = converted.input_size
    result.tflite_errors.extend(converted.errors)
    return result


def export_saved_model(model, export_dir, tflite=False, tflite_size=DEFAULT_TFLITE_SIZE):
    """Writes `model` as a SavedModel that runs on any image size.

    The SavedModel holds the whole network including the VGG encoder, so it
    loads with `tf.saved_model.load(export_dir)` alone (no exchange_st import,
    no VGG weights file). Use either the signatures (`serving_default`,
    `stylize_masked`, `stylize_uint8`; `alpha` required) or the functions of
    `StylizeModule` (`loaded.stylize(content, style)`, alpha defaults to 1).

    Args:
      model: an `ExchangeStyleTransfer`; built here if it is not yet.
      export_dir: output directory (created; an existing SavedModel there is
        overwritten).
      tflite: also try converting to `export_dir/model.tflite`.
      tflite_size: side of the square inputs of the fixed-size TFLite
        fallback (used only if no any-size conversion runs).

    Returns:
      `ExportResult`.
    """
    export_dir = os.fspath(export_dir)
    if not model.built:
        model.build()
    module = StylizeModule(model)
    signatures = module.signatures()
    tf.saved_model.save(module, export_dir, signatures=signatures)
    stale = os.path.join(export_dir, TFLITE_FILENAME)
    if os.path.exists(stale):
        # A TFLite model from an earlier export would not match these weights.
        os.remove(stale)
    with open(os.path.join(export_dir, EXPORT_CONFIG_FILENAME), "w", encoding="utf-8") as f:
        json.dump(model_config_of(model), f, indent=2, sort_keys=True)
    logging.info("Wrote SavedModel to %s (signatures: %s).", export_dir, ", ".join(signatures))
    result = ExportResult(export_dir=export_dir)
    if tflite:
        export_tflite(export_dir, result, tflite_size)
    return result


@dataclasses.dataclass
class ExportConfig:
    """What `export_savedmodel.py` exports.

    Attributes:
      export_dir: SavedModel output directory.
      checkpoint_dir: training model_dir, `.weights.h5` file, release
        directory or legacy checkpoint prefix (see `loader.load`);
        exclusive with `random_init`. Neither: the pretrained release.
      random_init: export an untrained model (demos and tests).
      vgg_weights: VGG weights of the `random_init` model (`"imagenet"`, an
        h5 path, or None for random); a checkpoint holds its own.
      model_config: `ExchangeStyleTransfer` kwargs for `random_init`, and for
        a legacy `checkpoint_dir` only when its model_dir has no config.json
        (a weights file's own config describes its model).
      tflite: also try a TFLite conversion.
      tflite_size: input side of the fixed-size TFLite fallback.
      seed: weight-init seed of the `random_init` model.
    """

    export_dir: str
    checkpoint_dir: str | None = None
    random_init: bool = False
    vgg_weights: str | None = None
    model_config: dict = dataclasses.field(default_factory=dict)
    tflite: bool = False
    tflite_size: int = DEFAULT_TFLITE_SIZE
    seed: int | None = None

    def __post_init__(self):
        if self.checkpoint_dir and self.random_init:
            raise ValueError(
                "Give at most one of checkpoint_dir and random_init (none: the pretrained release)."
            )
        unknown = sorted(set(self.model_config) - set(MODEL_CONFIG_KEYS))
        if unknown:
            raise ValueError(f"Unknown model_config keys {unknown}; known: {MODEL_CONFIG_KEYS}.")


def export_from_config(config: ExportConfig) -> ExportResult:
    """Builds or restores the model as configured and exports it."""
    if config.random_init:
        model = checkpoints.untrained_model(
            "efanet", config.vgg_weights, config.model_config, config.seed
        )
    else:
        model = loader.load(
            config.checkpoint_dir,
            config.model_config,
            what="export",
            expect=ExchangeStyleTransfer,
            instead="--checkpoint_dir (export_savedmodel.py)",
        )
        if config.checkpoint_dir:
            checkpoints.warn_if_random_vgg(model, config.checkpoint_dir)
    return export_saved_model(
        model, config.export_dir, tflite=config.tflite, tflite_size=config.tflite_size
    )
