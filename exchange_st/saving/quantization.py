"""What a release stores of each weight, and what that costs a stylization.

Kernels (every rank >= 2 `kernel`) are int8 with one float32 scale per
output channel (`quantize`), or float16 below `int8_min_params`; other
tensors float32. `quantization_error` measures the release's stylizations
against the float32 model's, `within_target` checks them against the
error budget (docs/design.md, "Pretrained release"). The file format is `exchange_st.saving.release`.
"""

import contextlib

import keras
import numpy as np

SCHEME = (
    "kernels: int8 per output channel (last axis), symmetric, float32 scales (float16 "
    "below int8_min_params parameters); other tensors: float32"
)
# The cost the release format may add to a stylization in [0, 1] (docs/design.md, "What int8 costs").
MAX_MEAN_ERROR = 1.0 / 255.0
MAX_MAX_ERROR = 8.0 / 255.0


def quantize(w):
    """float `[..., C]` -> (int8 of the same shape, float32 `[C]` scales)."""
    w = np.asarray(w, np.float32)
    flat = w.reshape(-1, w.shape[-1])
    amax = np.max(np.abs(flat), axis=0)
    # An all-zero channel (e.g. a zero-initialised residual conv) stays zero.
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(flat / scale), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def dequantize(q, scale):
    return q.astype(np.float32) * np.asarray(scale, np.float32)


def storage_dtype(key, w, int8_min_params=0):
    """How a release stores variable `key` (value `w`): int8, float16 or float32."""
    if not (key.endswith("kernel") and np.ndim(w) >= 2):
        return "float32"
    return "int8" if np.size(w) >= int8_min_params else "float16"


def as_stored(w, dtype):
    """The float32 values `w` has after a round trip through `dtype` storage."""
    if dtype == "int8":
        return dequantize(*quantize(w))
    return np.asarray(w).astype(dtype).astype(np.float32)


def inference_variables(model):
    """`{key: variable}` of the weights a release stores, e.g. `decoder_c/pre_res0/conv1/kernel`.

    Keys are the variables' paths below the model with the saved attribute's
    name in front (the decoders' sub-layers carry no prefix of their own).
    """
    found = {}
    for name, layer in model.release_layers():
        for v in layer.weights:
            rest = v.path.split("/", 1)[1]
            if rest.startswith(f"{layer.name}/"):
                rest = rest[len(layer.name) + 1 :]
            key = f"{name}/{rest}"
            if key in found:
                raise ValueError(f"two variables of {name} share the release key {key!r}")
            found[key] = v
    return found


@contextlib.contextmanager
def dequantized_weights(model, int8_min_params=0):
    """Within the block, `model` computes with the weights a release would give it."""
    variables = inference_variables(model)
    saved = {k: keras.ops.convert_to_numpy(v) for k, v in variables.items()}
    try:
        for key, v in variables.items():
            v.assign(as_stored(saved[key], storage_dtype(key, saved[key], int8_min_params)))
        yield model
    finally:
        for key, v in variables.items():
            v.assign(saved[key])


def stylize_pairs(model, pairs):
    """`model.stylize` of each `(content, style)` pair of `[H, W, 3]` images, as NumPy."""
    return [keras.ops.convert_to_numpy(model.stylize(c[None], s[None]))[0] for c, s in pairs]


def quantization_error(model, pairs, int8_min_params=0, reference=None):
    """How far the release's stylizations are from the float32 model's.

    Args:
      model: a built `ExchangeStyleTransfer`.
      pairs: `(content, style)` float32 `[H, W, 3]` images in [0, 1].
      int8_min_params: the storage policy measured (see `save`).
      reference: `stylize_pairs(model, pairs)` if already computed.

    Returns:
      `{"mean_abs", "max_abs", "per_pair": [{"mean_abs", "max_abs"}]}`, in
      [0, 1] units, of `model.stylize` (clipped to [0, 1]) with int8 kernels
      against float32 ones.
    """
    if reference is None:
        reference = stylize_pairs(model, pairs)
    with dequantized_weights(model, int8_min_params):
        compact = stylize_pairs(model, pairs)
    diffs = [np.abs(a - b) for a, b in zip(compact, reference)]
    per_pair = [{"mean_abs": float(d.mean()), "max_abs": float(d.max())} for d in diffs]
    total = sum(d.size for d in diffs)
    return {
        "mean_abs": float(sum(d.sum() for d in diffs) / total),
        "max_abs": max(p["max_abs"] for p in per_pair),
        "per_pair": per_pair,
    }


def within_target(error):
    return error["mean_abs"] < MAX_MEAN_ERROR and error["max_abs"] < MAX_MAX_ERROR


def choose_policy(model, pairs, policies, reference=None, report=None):
    """The first storage policy of `policies` whose release stays within the error target.

    Each policy (an `int8_min_params`, see `save`) is measured in order until
    one is within the target (mean < 1/255, max < 8/255); if none is, the
    last one tried, the most precise by convention, is chosen.

    Args:
      model: a built `ExchangeStyleTransfer` (or `AdaINNet`).
      pairs: `(content, style)` float32 `[H, W, 3]` images in [0, 1].
      policies: `int8_min_params` values, in order of preference.
      reference: `stylize_pairs(model, pairs)` if already computed.
      report: called with `(policy, error, within)` after each measurement.

    Returns:
      `(chosen, measured)`: the chosen policy, and `{str(policy): error +
      {"within_target": bool}}` for every policy measured.
    """
    if not policies:
        raise ValueError("choose_policy needs at least one storage policy")
    if reference is None:
        reference = stylize_pairs(model, pairs)
    measured, chosen = {}, None
    for policy in policies:
        error = quantization_error(model, pairs, policy, reference)
        ok = within_target(error)
        measured[str(policy)] = dict(error, within_target=ok)
        if report is not None:
            report(policy, error, ok)
        chosen = policy
        if ok:
            break
    return chosen, measured
