"""TFLite (LiteRT) conversion of an exported SavedModel: the variants, and their check in LiteRT.

TensorFlow converts; the LiteRT runtime (`ai_edge_litert`, the `litert`
extra) runs the converted file against the SavedModel before it is written,
because that runtime, not TensorFlow's deprecated `tf.lite.Interpreter`, is
what users run it with. Without LiteRT nothing is written, and the result says
what to install.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

TFLITE_FILENAME = "model.tflite"
# Side of the square inputs of the fixed-size TFLite fallback.
DEFAULT_TFLITE_SIZE = 512
# Check size of an any-size TFLite model: not a multiple of 8 on purpose.
_DYNAMIC_CHECK_SIZE = 67
# Largest difference between TFLite and SavedModel outputs a check accepts;
# XNNPACK reorders float sums, nothing more.
_TFLITE_TOLERANCE = 1e-3


@dataclasses.dataclass
class TFLiteResult:
    """What `convert` wrote.

    Attributes:
      path: path of `model.tflite` if a conversion and its check succeeded,
        else None.
      variant: which conversion produced it (see `_tflite_attempts`), e.g.
        `"fixed 512x512, builtin ops"`; None without a TFLite model.
      input_size: `(H, W)` the model is fixed to (content and style alike),
        or None if it takes any size.
      errors: why each earlier (preferred) conversion was rejected; the
        lines docs/design.md quotes.
    """

    path: str | None = None
    variant: str | None = None
    input_size: tuple[int, int] | None = None
    errors: list[str] = dataclasses.field(default_factory=list)


def _tflite_attempts(export_dir, size):
    """`(variant, input size or None, make_converter)` in order of preference.

    An any-size model is preferred. The TF 2.21 converter loses the channel
    count of the convolutions after `UpSampling2D` when height and width are
    unknown, so builtin ops fail there. TF Select ops would convert, but need
    the Flex delegate, which LiteRT's wheel lacks, so such a file could be
    neither checked nor run: no Select-ops variant is tried. With fixed shapes
    everything is a builtin op.
    """

    def dynamic():
        converter = tf.lite.TFLiteConverter.from_saved_model(
            export_dir, signature_keys=["serving_default"]
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter

    keep_alive = []

    def fixed():
        # Converting from the loaded SavedModel (not the in-memory Keras
        # model) makes the converter freeze plain tf.Variables into constants.
        loaded = tf.saved_model.load(export_dir)
        # The converter only references the variables weakly.
        keep_alive.append(loaded)
        image = tf.TensorSpec([1, size, size, 3], tf.float32)

        @tf.function(
            input_signature=[
                tf.TensorSpec(image.shape, tf.float32, name="content"),
                tf.TensorSpec(image.shape, tf.float32, name="style"),
                tf.TensorSpec([], tf.float32, name="alpha"),
            ]
        )
        def serve(content, style, alpha):
            return {"stylized": loaded.stylize(content, style, alpha)}

        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [serve.get_concrete_function()], loaded
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter

    return [
        ("any size, builtin ops", None, dynamic),
        (f"fixed {size}x{size}, builtin ops", (size, size), fixed),
    ]


def convert(export_dir, size=DEFAULT_TFLITE_SIZE):
    """Converts the SavedModel in `export_dir` to `model.tflite` and checks it.

    Each variant of `_tflite_attempts` is converted (no custom ops allowed)
    and run once against the SavedModel; the first that passes is written.
    Failures are recorded in `errors` rather than raised: TFLite is an
    optional extra of the export.

    Returns:
      `TFLiteResult`.
    """
    result = TFLiteResult()
    if litert_interpreter() is None:
        result.errors.append(
            "LiteRT is not installed (pip install 'exchange_st[litert]'), so a converted model "
            "could not be checked: none was written."
        )
        logging.warning("TFLite conversion skipped: %s", result.errors[-1])
        return result
    for variant, input_size, make_converter in _tflite_attempts(export_dir, size):
        try:
            converter = make_converter()
            # Custom ops would need a runtime the user does not have.
            converter.allow_custom_ops = False
            flatbuffer = converter.convert()
            check_tflite_model(
                flatbuffer, export_dir, _DYNAMIC_CHECK_SIZE if input_size is None else size
            )
        except Exception as e:  # noqa: BLE001 - converter/runtime errors come in many types.
            message = f"{variant}: {type(e).__name__}: {_one_paragraph(e)}"
            result.errors.append(message)
            logging.warning("TFLite conversion rejected: %s", message)
            continue
        path = os.path.join(export_dir, TFLITE_FILENAME)
        with open(path, "wb") as f:
            f.write(flatbuffer)
        result.path, result.variant, result.input_size = path, variant, input_size
        logging.info("Wrote %s (%.1f MB, %s).", path, len(flatbuffer) / 2**20, variant)
        break
    return result


def _one_paragraph(error, limit=1200):
    """One line of an error; for converter errors the op summary, not the MLIR dump."""
    text = " ".join(str(error).split())
    marker = text.find("Some ops are not supported")
    if marker > 0:
        text = text[:200] + " ... " + text[marker:]
    return text if len(text) <= limit else text[:limit] + " ..."


def litert_interpreter():
    """LiteRT's `Interpreter` class (`ai_edge_litert`), or None where it is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    return Interpreter


def check_tflite_model(flatbuffer, export_dir, size):
    """Runs a converted model once in LiteRT on a `size` x `size` pair against the SavedModel.

    Raises:
      ValueError: the output differs from the SavedModel's.
    """
    interpreter = litert_interpreter()(model_content=flatbuffer)
    # The signature runner resizes inputs of unknown height and width.
    runner = interpreter.get_signature_runner("serving_default")
    rng = np.random.default_rng(0)
    content = rng.uniform(size=(1, size, size, 3)).astype(np.float32)
    style = np.ascontiguousarray(content[:, ::-1])
    alpha = np.float32(0.75)
    out = runner(content=content, style=style, alpha=alpha)["stylized"]
    # Keep the loaded object referenced: its functions hold the variables weakly.
    reference = tf.saved_model.load(export_dir)
    want = reference.stylize(content, style, alpha).numpy()
    error = float(np.max(np.abs(out - want))) if out.shape == want.shape else float("inf")
    if not error <= _TFLITE_TOLERANCE:
        raise ValueError(
            f"TFLite output (shape {out.shape}) differs from the SavedModel's "
            f"(shape {want.shape}) by {error:.3g} > {_TFLITE_TOLERANCE}"
        )
    return out
