"""The SavedModel's stylization as an ONNX model for ONNX Runtime Web.

`convert` traces the SavedModel's `serving_default` signature at batch 1
through `tf2onnx` (every op of the inference path converts: the VGG
preprocessing, the covariance codes, the Feature Exchange blocks, the
fusion, the reflect padding), stores the kernels as compactly as the
release does (int8 per output channel, VGG float16;
`exchange_st.saving.quantization`), and
`check` compares the file, run by ONNX Runtime, with the SavedModel.
Why ONNX and not TensorFlow.js: docs/design.md, "In the browser".
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from exchange_st.saving import quantization

OPSET = 17
INPUTS = ("content", "style", "alpha")
OUTPUT = "stylized"
# Initializers smaller than this (biases, the first VGG conv) stay float32.
MIN_COMPACT_ELEMENTS = 4096
WEIGHT_FORMATS = ("compact", "float32")

_INSTALL_HINT = 'the web export needs tf2onnx and onnx: pip install -e ".[web]"'


def _require(name):
    try:
        return __import__(name)
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from e


@dataclasses.dataclass
class OnnxResult:
    """What `convert` wrote.

    Attributes:
      path: the `.onnx` file.
      bytes: its size.
      weights: "compact" or "float32".
      int8_elements / float16_elements / float32_elements: parameters stored each way.
    """

    path: str
    bytes: int
    weights: str
    int8_elements: int = 0
    float16_elements: int = 0
    float32_elements: int = 0


def convert(saved_model, path, weights="compact") -> OnnxResult:
    """Writes the SavedModel's stylization (content, style, alpha -> stylized) as ONNX.

    Args:
      saved_model: a SavedModel of `export_saved_model`: its directory, or
        the object `tf.saved_model.load` returned for it.
      path: the `.onnx` file to write.
      weights: "compact" (kernels on the release's int8 grid as int8, other
        large kernels as float16; `_store_compactly`) or "float32" (as traced).

    Returns:
      `OnnxResult`. The model's inputs are `content` `[1, H, W, 3]`, `style`
      `[1, H2, W2, 3]` (float32 in [0, 1], any size >= 16 px) and `alpha`
      (scalar, Eq. 8); its output `stylized` is `[1, H, W, 3]` in [0, 1].
    """
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {WEIGHT_FORMATS}; got {weights!r}")
    tf2onnx = _require("tf2onnx")
    onnx = _require("onnx")
    import tensorflow as tf

    # The loaded object owns the variables: it must outlive the tracing.
    loaded = _loaded(saved_model)
    serve = loaded.signatures["serving_default"]
    spec = [
        tf.TensorSpec([1, None, None, 3], tf.float32, name="content"),
        tf.TensorSpec([1, None, None, 3], tf.float32, name="style"),
        tf.TensorSpec([], tf.float32, name="alpha"),
    ]

    # Batch 1: a page stylizes one image, and a fixed batch lets the
    # converter fold the shape arithmetic of the batch dimension.
    @tf.function(input_signature=spec)
    def stylize(content, style, alpha):
        return {OUTPUT: serve(content=content, style=style, alpha=alpha)[OUTPUT]}

    proto, _ = tf2onnx.convert.from_function(stylize, input_signature=spec, opset=OPSET)
    result = OnnxResult(path=os.fspath(path), bytes=0, weights=weights)
    if weights == "compact":
        _store_compactly(proto, result)
    onnx.checker.check_model(proto)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx.save(proto, os.fspath(path))
    result.bytes = os.path.getsize(path)
    return result


def _loaded(saved_model):
    """A loaded SavedModel, loading `saved_model` if it is a path (the full model takes seconds)."""
    if hasattr(saved_model, "signatures"):
        return saved_model
    import tensorflow as tf

    return tf.saved_model.load(os.fspath(saved_model))


def _kernel_axis(proto):
    """`{initializer name: output-channel axis}` of Conv weights and MatMul right operands."""
    axes = {}
    for node in proto.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1:
            axes[node.input[1]] = 0  # ONNX Conv weights are [out, in, kH, kW]
        elif node.op_type == "MatMul":
            axes[node.input[1]] = -1  # [in, out], as the Keras kernel
    return axes


def _store_compactly(proto, result):
    """Stores each large kernel initializer as int8 (+ `DequantizeLinear`) or float16 (+ `Cast`).

    int8 where the kernel lies on `quantization.quantize`'s per-channel grid,
    as a release's kernels do, so the file holds exactly the release's
    numbers; float16 otherwise (the VGG, which releases ship in float16, or
    a float32 checkpoint's kernels).
    """
    from onnx import TensorProto, helper, numpy_helper

    axes = _kernel_axis(proto)
    kept, nodes = [], []
    for init in proto.graph.initializer:
        w = numpy_helper.to_array(init)
        axis = axes.get(init.name)
        if axis is None or w.dtype != np.float32 or w.size < MIN_COMPACT_ELEMENTS:
            kept.append(init)
            result.float32_elements += w.size
            continue
        moved = np.moveaxis(w, axis, -1)
        q, scale = quantization.quantize(moved)
        if np.max(np.abs(quantization.dequantize(q, scale) - moved)) <= 1e-6 * np.max(np.abs(w)):
            q = np.ascontiguousarray(np.moveaxis(q, -1, axis))
            kept.append(numpy_helper.from_array(q, init.name + "/int8"))
            kept.append(numpy_helper.from_array(scale, init.name + "/scale"))
            node = helper.make_node(
                "DequantizeLinear",
                [init.name + "/int8", init.name + "/scale"],
                [init.name],
                name=init.name + "/dequantize",
                axis=axis % w.ndim,
            )
            result.int8_elements += w.size
        else:
            kept.append(numpy_helper.from_array(w.astype(np.float16), init.name + "/float16"))
            node = helper.make_node(
                "Cast", [init.name + "/float16"], [init.name], to=TensorProto.FLOAT
            )
            result.float16_elements += w.size
        nodes.append(node)
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    # Producers first: the graph stays topologically sorted.
    existing = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes + existing)


def check(onnx_path, saved_model, pairs, alpha=1.0):
    """ONNX Runtime's outputs against the SavedModel's on `(content, style)` pairs.

    Args:
      onnx_path: a file of `convert`.
      saved_model: the SavedModel it was converted from (directory or loaded).
      pairs: float32 `[H, W, 3]` images in [0, 1].
      alpha: Eq. 8's trade-off.

    Returns:
      `{"mean_abs", "max_abs"}` over all pairs, in [0, 1] units.
    """
    ort = _require("onnxruntime")
    import tensorflow as tf

    loaded = _loaded(saved_model)
    serve = loaded.signatures["serving_default"]
    session = ort.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    diffs = []
    for content, style in pairs:
        feeds = {
            "content": np.asarray(content, np.float32)[None],
            "style": np.asarray(style, np.float32)[None],
            "alpha": np.asarray(alpha, np.float32),
        }
        got = session.run([OUTPUT], feeds)[0]
        want = serve(**{k: tf.constant(v) for k, v in feeds.items()})[OUTPUT].numpy()
        diffs.append(np.abs(got - want).ravel())
    diffs = np.concatenate(diffs)
    return {"mean_abs": float(diffs.mean()), "max_abs": float(diffs.max())}
