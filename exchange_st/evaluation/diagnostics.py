"""Trainability diagnostics: activation scale per stage and gradient norm per group and loss term."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Trainable groups of `ExchangeStyleTransfer`, matched against variable paths
# in this order (the first match wins).
VARIABLE_GROUPS = (
    ("compressor", ("compressor",)),
    ("exchange", ("exchange_block",)),
    ("codes", ("fc_uni_c", "fc_uni_s", "fc_com", "fc_rec")),
    ("heads", ("style_heads",)),
    ("pre_blocks", ("pre_res",)),
    ("post_blocks", ("post_res",)),
    ("upsampler", ("/up", "to_rgb")),
)
LOSS_TERMS = ("content", "style", "rec", "com", "total")


def variable_groups(model) -> dict[str, list[tf.Variable]]:
    """Splits the trainable variables of an `ExchangeStyleTransfer` by stage.

    Raises:
      ValueError: a trainable variable matches no group (a new layer must be
        given one, or its gradients would go unreported).
    """
    groups = {name: [] for name, _ in VARIABLE_GROUPS}
    for v in model.trainable_variables:
        name = next((g for g, keys in VARIABLE_GROUPS if any(k in v.path for k in keys)), None)
        if name is None:
            raise ValueError(f"trainable variable {v.path} belongs to no diagnostic group")
        groups[name].append(v)
    return groups


def _stats(x) -> dict[str, float]:
    x = np.asarray(x, np.float64)
    # Spatial std (per image and channel, averaged) tells a flat map from a
    # structured one at the same overall std.
    spatial = x.std(axis=(1, 2)).mean() if x.ndim == 4 else float("nan")
    return {"mean": float(x.mean()), "std": float(x.std()), "spatial_std": float(spatial)}


def stage_statistics(model, content, style) -> dict[str, dict[str, float]]:
    """Mean, std and spatial std of every stage of the `s2c` path of Fig. 3.

    Args:
      model: an `ExchangeStyleTransfer`.
      content, style: `[B, H, W, 3]` batches in [0, 1] (same size, paired).

    Returns:
      Ordered dict stage -> stats for `f_vgg`, the codes, `v_w`/`v_c`/`v_r`,
      the content code, `R_pool` (Eq. 1, first projection), `R_fusion`
      (Eq. 2), each post-fusion block, each upsampling stage and `s2c`.
    """
    out = model(content, style)
    f_vgg = out["feats_c"][-1]
    result = {"f_vgg_c": _stats(f_vgg)}
    for key in ("f_c", "f_s", "f_com", "f_uni_c", "f_uni_s", "v_w_c", "v_c_s", "v_r_s"):
        result[key] = _stats(out[key])
    decoder = model.decoder_c
    code = decoder.content_code(model.purify(f_vgg, out["v_w_c"]))
    result["content_code"] = _stats(code)
    v_c = out["v_c_s"][:, : code.shape[-1]]
    result["R_pool"] = _stats(tf.reduce_sum(code * v_c[:, None, None, :], -1, keepdims=True))
    x = decoder.fuse(code, out["v_c_s"], out["v_r_s"])
    result["R_fusion"] = _stats(x)
    for i, block in enumerate(decoder.post_blocks):
        x = block(x)
        result[f"post_block{i}"] = _stats(x)
    stage = 0
    for layer in decoder.up_layers:
        x = layer(x)
        if "UpSampling" in type(layer).__name__:
            result[f"upsample{stage}"] = _stats(x)
            stage += 1
    result["s2c"] = _stats(out["s2c"])
    return result


def gradient_norms(model, content, style):
    """Global gradient norm reaching each variable group, for each term of the model's objective.

    Returns:
      `(values, norms)`: the loss terms' values, and `norms[term][group]`
      for the terms of `LOSS_TERMS` (unweighted, except `total` = Eq. 7).
    """
    groups = variable_groups(model)
    variables = [v for vs in groups.values() for v in vs]
    with tf.GradientTape(persistent=True) as tape:
        out = model(content, style, training=True)
        terms = model.loss_terms(out, content, style)
    norms = {}
    for term in LOSS_TERMS:
        grads = dict(zip((id(v) for v in variables), tape.gradient(terms[term], variables)))
        norms[term] = {
            name: float(
                tf.linalg.global_norm([grads[id(v)] for v in vs if grads[id(v)] is not None])
            )
            for name, vs in groups.items()
        }
    del tape
    return {k: float(terms[k]) for k in LOSS_TERMS}, norms


def format_report(stats, values, norms) -> str:
    """Two plain-text tables: stage statistics and gradient norms."""
    lines = [f"{'stage':<14}{'mean':>10}{'std':>10}{'spatial std':>13}"]
    for stage, s in stats.items():
        lines.append(f"{stage:<14}{s['mean']:>10.4g}{s['std']:>10.4g}{s['spatial_std']:>13.4g}")
    groups = list(next(iter(norms.values())))
    lines.append("")
    lines.append(f"{'term':<9}{'value':>10} " + "".join(f"{g:>12}" for g in groups))
    for term, row in norms.items():
        lines.append(
            f"{term:<9}{values[term]:>10.4g} " + "".join(f"{row[g]:>12.3e}" for g in groups)
        )
    return "\n".join(lines)


def crop_identification(first, second) -> dict[str, float]:
    """How well a statistic of one crop of an image identifies the image.

    Row `i` of both arrays is a statistic (a flattened covariance, or
    AdaIN's channel means and standard deviations) of two different random
    crops of image `i`. A style path that reads the statistic can only hold
    for crops it has not seen if the statistic of a new crop lies nearer its
    own image's other crop than other images' crops.

    Args:
      first, second: `[N, D]` statistics of the first and second crop of N
        images, N >= 2.

    Returns:
      `accuracy`: the fraction of second crops whose nearest first crop
      (Euclidean) is their own image's (1/N by chance); `within_between`:
      the median over images of the distance between an image's two crops
      over the distance from its first crop to the next image's (0 when a
      crop's statistic is the image's, ~1 when it says nothing about it).
    """
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim != 2 or len(first) < 2:
        raise ValueError(
            f"crop_identification needs two [N, D] arrays of one shape with N >= 2, "
            f"got {first.shape} and {second.shape}"
        )
    # |a - b|^2 = |a|^2 + |b|^2 - 2ab: no [N, N, D] tensor for D = 512^2.
    sq = (second**2).sum(1)[:, None] + (first**2).sum(1)[None, :] - 2.0 * second @ first.T
    accuracy = float((sq.argmin(axis=1) == np.arange(len(first))).mean())
    within = np.linalg.norm(first - second, axis=1)
    between = np.linalg.norm(first - np.roll(first, -1, axis=0), axis=1)
    ratio = float(np.median(within / np.maximum(between, 1e-12)))
    return {"accuracy": accuracy, "within_between": ratio}
