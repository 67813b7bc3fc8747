"""Whether a model stylizes: the scores of the learning check and of train.py's evaluation curve.

A model can lower its training losses and still paint one image for every
style (the paper's recipe did, docs/experiments/style_conditioning.md), so
these scores look at the mechanism: does the output follow the content's
structure, does the style reach the decoder (`v_r_s`'s spread), does the
palette follow the style's (chroma follow), does the right style lower the
style loss (gain). Backend-neutral (NumPy on the model's outputs), so the
callback of `training.callbacks` runs it under JAX without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from exchange_st.data import image_io
from exchange_st.evaluation import metrics, style_dependence
from exchange_st.nn import covariance
from exchange_st.nn import losses as losses_lib

# Styles under which the first content is shown in a report's strip.
STRIP_STYLES = 8
# The columns of an evaluation curve (`curve_row`), in order.
CURVE_COLUMNS = (
    "step",
    "content",
    "style",
    "total",
    "luminance_corr",
    "style_gain",
    "v_r_spread",
    "colour_follow",
    "colour_r",
    "chroma_follow",
    "chroma_r",
    "hue_headroom",
)


@dataclasses.dataclass
class EvalSet:
    """Fixed evaluation images: pairs (content i with style i) and styles for the dependence.

    Attributes:
      content, style: `[N, S, S, 3]` pairs in [0, 1], N >= 2 (`style_gain`
        swaps the styles between pairs).
      dependence_styles: `[M, S, S, 3]` in [0, 1], M >= 3: the first content
        under each of them gives `v_r_s`'s spread, the colour follow and the
        hue headroom; None skips those scores.
    """

    content: np.ndarray
    style: np.ndarray
    dependence_styles: np.ndarray | None = None


def load_eval_set(content_dir, style_dir, size=256, pairs=4, dependence_styles=20) -> EvalSet:
    """The first `pairs` contents and styles (sorted file names), centre-cropped to `size`².

    The same files give the same set on every call, so the reports of a run,
    and of a run continued on another machine, stay comparable.
    """
    contents = [image_io.load_square(p, size) for p in image_io.list_images(content_dir)[:pairs]]
    paths = image_io.list_images(style_dir)
    styles = [image_io.load_square(p, size) for p in paths[: max(pairs, dependence_styles)]]
    n = min(pairs, len(contents), len(styles))
    if n < 2:
        raise ValueError(
            f"an evaluation set needs at least 2 contents and 2 styles; {content_dir} and "
            f"{style_dir} give {len(contents)} and {len(styles)}"
        )
    dependence = np.stack(styles[:dependence_styles]) if dependence_styles >= 3 else None
    if dependence is not None and len(dependence) < 3:
        dependence = None
    return EvalSet(np.stack(contents[:n]), np.stack(styles[:n]), dependence)


def style_gain(encoder, stylize, content, style) -> float:
    """How much a model uses its style input: 0 when the output ignores it.

    Each content is stylized twice, with its own style and with the next
    pair's; both outputs are scored against the pair's own style (Eq. 4, as
    Table 1 scores it). The gain is the share of that style loss which the
    right style removes: `(L(other) - L(own)) / L(other)`, averaged over the
    pairs. A model that renders the same image whatever the style scores 0
    exactly, one that paints each pair's style scores close to 1, and one
    that moves away from the style it is given scores below 0. Unlike the
    difference between two outputs, a random dependence on the style (a
    fresh model's) is not rewarded: it scores 0 on average.

    Args:
      encoder: the `VGGEncoder` of the metric.
      stylize: `(content, style) -> [B, H, W, 3]` in [0, 1].
      content, style: `[B, H, W, 3]` pairs in [0, 1], B >= 2 (the styles
        are rolled by one to get each pair's wrong style).

    Returns:
      The mean relative gain, a Python float.
    """
    content, style = np.asarray(content), np.asarray(style)
    if len(content) < 2:
        raise ValueError(f"style_gain needs at least 2 pairs to swap styles, got {len(content)}")
    own = np.asarray(stylize(content, style))
    other = np.asarray(stylize(content, np.roll(style, 1, axis=0)))
    # VGG features of the style targets and of both stylizations, each batch once.
    targets, own, other = (metrics.encode(encoder, x) for x in (style, own, other))

    def loss(feats, i):
        terms = losses_lib.style_loss(
            [f[i : i + 1] for f in feats], [t[i : i + 1] for t in targets]
        )
        return sum(float(v) for v in terms.values())

    gains = []
    for i in range(len(content)):
        l_own, l_other = loss(own, i), loss(other, i)
        gains.append((l_other - l_own) / max(l_other, 1e-12))
    return float(np.mean(gains))


def code_liveness(model, images) -> dict:
    """Whether the covariance compressor still tells images apart (the collapse of "Trainability").

    A model whose compressor has gone silent gives every image the same code,
    so `v_c`, `v_r` are constants and the output cannot depend on the style.

    Args:
      model: an `ExchangeStyleTransfer`.
      images: `[N, H, W, 3]` in [0, 1], N >= 2 different images.

    Returns:
      Dict with, per compressor conv, `alive` (fraction of its ReLU channels
      positive somewhere on the images) and `rms`; and the code `f` RMS and
      its spread across the images (`f_std_across`, 0 when every image gets
      the same code).
    """
    compressor = model.compressor
    f_vgg = model.encoder(images, output_all=False)
    cov = covariance.masked_covariance(f_vgg)
    x = keras.ops.cast(cov[..., None], compressor.compute_dtype)
    convs = {}
    # CovarianceCompressor.compress step by step, keeping each conv's output.
    for conv in compressor.convs:
        x = conv(x)
        a = _numpy(x)
        convs[conv.name] = {
            "alive": float((a > 0).any(axis=(0, 1, 2)).mean()),
            "rms": float(np.sqrt(np.mean(np.square(a)))),
        }
    f = _numpy(compressor.fc(compressor.flatten(x)))
    return {
        "convs": convs,
        "f_rms": float(np.sqrt(np.mean(np.square(f)))),
        "f_std_across": float(f.std(axis=0).mean()),
    }


def format_liveness(liveness) -> str:
    lines = ["compressor conv   alive channels   RMS"]
    for name, c in liveness["convs"].items():
        lines.append(f"{name:<17} {c['alive']:>14.3f} {c['rms']:>9.4g}")
    lines.append(
        f"codes f: RMS {liveness['f_rms']:.4g}, std across images {liveness['f_std_across']:.4g}"
    )
    return "\n".join(lines)


def evaluate(model, eval_set: EvalSet) -> tuple[dict, dict]:
    """Images and scores of a model (EFANet or a baseline with `stylize`) on `eval_set`.

    Returns:
      `(images, scores)`. `images`: `s2c` of every pair (and `c2c` for
      EFANet), and `styles`, the first content under the first
      `STRIP_STYLES` dependence styles. `scores`: Table 1's `content`,
      `style`, `total` (`metrics.perceptual_loss`) on the pairs;
      `spatial_std` (~0 for a flat image); `luminance_corr`, the outputs'
      luminance correlation with the content's (structure kept);
      `pair_std` (0 when every pair gets one image); `s2c_minus_c2c`;
      `style_gain`; for EFANet the codes' spread (`code_std`, `code_rms`,
      `last_conv_alive`) and `v_r_spread` (`style_dependence`: ~0 when the
      style no longer reaches the decoder); `colour_follow` and
      `chroma_follow` (`style_dependence.palette_follow`) and
      `hue_headroom` over the dependence styles.
    """
    content, style = eval_set.content, eval_set.style
    is_efanet = hasattr(model, "analyze")
    images = {"s2c": np.asarray(model.stylize(content, style))}
    if is_efanet:
        images["c2c"] = np.clip(_numpy(model(content, style)["c2c"]), 0.0, 1.0)
    scores = metrics.perceptual_loss(model.encoder, images["s2c"], content, style)
    scores = {k: scores[k] for k in ("content", "style", "total")}
    luminance, reference = images["s2c"].mean(-1), content.mean(-1)
    scores["spatial_std"] = float(luminance.std(axis=(1, 2)).mean())
    scores["luminance_corr"] = float(
        np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(luminance, reference)])
    )
    # 0 when the decoder paints one fixed image whatever its input (what a
    # collapsed fusion path renders).
    scores["pair_std"] = float(images["s2c"].std(axis=0).mean())
    # ~0 when v_c, v_r do not yet depend on the pair and I_s->c is I_c->c.
    scores["s2c_minus_c2c"] = (
        float(np.abs(images["s2c"] - images["c2c"]).mean()) if is_efanet else math.nan
    )
    scores["style_gain"] = style_gain(model.encoder, model.stylize, content, style)
    if is_efanet:
        # The collapse's first sign (docs/experiments/trainability.md): the codes
        # stop telling the evaluation images apart and the compressor goes silent.
        live = code_liveness(model, np.concatenate([content, style]))
        scores["code_std"] = live["f_std_across"]
        scores["code_rms"] = live["f_rms"]
        scores["last_conv_alive"] = list(live["convs"].values())[-1]["alive"]
    styles = eval_set.dependence_styles
    if styles is not None:
        if is_efanet:
            tensors = style_dependence.stage_tensors(model, content[0], styles)
            report = {k: style_dependence.spread(v) for k, v in tensors.items()}
            scores["style_dependence"] = report
            scores["v_r_spread"] = report[style_dependence.KEY_STAGE]["ratio"]
            per_style = tensors["s2c"]
        else:
            first = content[:1]
            per_style = np.concatenate(
                [
                    np.asarray(model.stylize(np.repeat(first, len(batch), 0), batch))
                    for batch in np.array_split(styles, -(-len(styles) // 8))
                ]
            )
        scores.update(style_dependence.palette_follow(per_style, styles))
        scores["hue_headroom"] = style_dependence.hue_headroom(model.encoder, per_style, styles)[
            "headroom"
        ]
        images["styles"] = per_style[:STRIP_STYLES]
    return images, scores


def curve_row(step: int, scores: dict) -> dict:
    """One row of an evaluation curve (`CURVE_COLUMNS`) from `evaluate`'s scores; NaN where absent."""
    row = {"step": int(step)}
    for key in CURVE_COLUMNS[1:]:
        value = scores.get(key, math.nan)
        row[key] = float(value) if not isinstance(value, dict) else math.nan
    for key in ("colour_follow", "chroma_follow"):
        follow = scores.get(key)
        if isinstance(follow, dict):
            row[key] = float(follow["slope"])
            row[key.replace("_follow", "_r")] = float(follow["r"])
    return row


def strip(eval_set: EvalSet, images: dict) -> np.ndarray | None:
    """One picture: the styles in the top row, the first content under each below, the content
    itself at the left. A model that ignores the style paints one image across the bottom row.
    """
    if "styles" not in images:
        return None
    styles = list(eval_set.dependence_styles[: len(images["styles"])])
    blank = np.ones_like(eval_set.content[0])
    rows = [[blank] + styles, [eval_set.content[0]] + list(images["styles"])]
    return image_io.make_grid(rows, pad=2)


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")))
