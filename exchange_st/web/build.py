"""One call from a SavedModel to a browser page: convert, check against the SavedModel, build.

`python export_savedmodel.py --export_dir=exports/efanet --web` calls
`build_web`, which writes `exports/efanet/web/`; `python -m http.server -d
exports/efanet/web` serves it (open http://localhost:8000).
"""

from __future__ import annotations

import dataclasses
import os


from exchange_st.data import pydata
from exchange_st.saving import quantization, release
from exchange_st.web import onnx_export, page

# The converted model may cost a stylization what the release format may
# (docs/design.md, "What int8 costs"): it stores the same numbers.
MAX_MEAN_ERROR = quantization.MAX_MEAN_ERROR
MAX_MAX_ERROR = quantization.MAX_MAX_ERROR


class WebCheckError(RuntimeError):
    """The ONNX model's stylizations are further from the SavedModel's than the budget allows."""


@dataclasses.dataclass
class WebResult:
    """What `build_web` wrote: the page, its model and the model's measured difference."""

    index_html: str
    onnx: onnx_export.OnnxResult
    error: dict


def check_pairs(seed=0):
    """Two fixed (content, style) pairs of the built-in procedural images, odd sizes included."""

    def image(index, h, w):
        return pydata.builtin_image((seed, index), max(h, w))[:h, :w]

    return [(image(0, 72, 96), image(1, 64, 64)), (image(2, 61, 50), image(3, 48, 80))]


def describe(source):
    """The model's name as the page shows it: the release's step, or the checkpoint's path."""
    path = source or release.default_path()
    if release.is_release(path):
        step = release.read_manifest(path).get("provenance", {}).get("checkpoint_step")
        return f"EFANet, pretrained release{f' (step {step})' if step else ''}"
    return f"EFANet from {os.path.basename(os.path.normpath(path))}"


def build_web(saved_model_dir, web_dir, name, weights="compact", log=print) -> WebResult:
    """Converts the SavedModel to ONNX, checks it, and builds the page in `web_dir`.

    Args:
      saved_model_dir: a SavedModel of `export_saved_model`.
      web_dir: the page's folder (created).
      name: the model's name on the page.
      weights: `onnx_export.convert`'s storage ("compact" or "float32").
      log: progress lines.

    Returns:
      `WebResult`.

    Raises:
      WebCheckError: ONNX Runtime's stylizations of `check_pairs()` differ
        from the SavedModel's by a mean of 1/255 or a max of 8/255 or more.
    """
    os.makedirs(web_dir, exist_ok=True)
    model_path = os.path.join(web_dir, page.MODEL_FILE)
    import tensorflow as tf

    log(f"Converting {saved_model_dir} to ONNX ({weights} weights)")
    # Loaded once: the conversion traces it and the check runs it.
    saved_model = tf.saved_model.load(os.fspath(saved_model_dir))
    converted = onnx_export.convert(saved_model, model_path, weights=weights)
    log(
        f"ONNX model: {converted.bytes / 1e6:.1f} MB ({converted.int8_elements:,} int8, "
        f"{converted.float16_elements:,} float16, {converted.float32_elements:,} float32 "
        "parameters)"
    )
    error = onnx_export.check(model_path, saved_model, check_pairs(), alpha=0.8)
    log(
        f"ONNX Runtime vs the SavedModel: mean {error['mean_abs'] * 255:.3f}/255, "
        f"max {error['max_abs'] * 255:.3f}/255"
    )
    if error["mean_abs"] >= MAX_MEAN_ERROR or error["max_abs"] >= MAX_MAX_ERROR:
        raise WebCheckError(
            f"{model_path} stylizes {error['mean_abs'] * 255:.2f}/255 (mean) and "
            f"{error['max_abs'] * 255:.2f}/255 (max) away from {saved_model_dir}; the budget is "
            "1/255 and 8/255: try weights='float32'."
        )
    index = page.build(web_dir, model_path, {"name": name}, log=log)
    return WebResult(index_html=index, onnx=converted, error=error)
