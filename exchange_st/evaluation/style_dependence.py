"""How much each stage of the `I_s->c` path depends on the style: the collapse of the first GPU model, measured.

A model that ignores its style input renders every style alike. Where it
stops listening shows in the stage whose output no longer changes with the
style: the codes (`f_s`), the exchange (`f_com`, `f_uni_s`), the style heads
(`v_w_s`, `v_c_s`, `v_r_s`), the fusion (`R_fusion`, Eq. 2) or the decoder
(`s2c`). For one content image and several styles this module gives, per
stage, the RMS of the tensor and its spread across the styles (the standard
deviation over the styles, averaged over the tensor's elements) as a
fraction of that RMS:
0 when the stage is the same for every style, about 1 when it is mostly
style-dependent. Backend-neutral (NumPy on the model's outputs), so the GPU
scripts run it under JAX without TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np

from exchange_st.evaluation import metrics
from exchange_st.nn import losses, ops

# The stages of Fig. 3 on the style's way to I_s->c, in order.
STAGES = ("f_s", "f_com", "f_uni_s", "v_w_s", "v_c_s", "v_r_s", "R_fusion", "s2c")
# The stage the sweep's rule and the learning check follow: the direction of
# Eq. 2's expansion, through which the style reaches the decoder.
KEY_STAGE = "v_r_s"


def spread(values) -> dict[str, float]:
    """RMS of `values` `[S, ...]` and its spread across the first axis.

    Returns:
      `rms`: root mean square over everything; `spread`: the standard
      deviation across the first axis, averaged over the other elements;
      `ratio`: spread / rms (0 when every row is the same); `move`: the
      mean absolute deviation from the mean row (docs/experiments/style_conditioning.md's "output move
      across styles").
    """
    x = np.asarray(values, np.float64)
    if x.shape[0] < 2:
        raise ValueError(f"a spread across styles needs at least 2 styles, got {x.shape[0]}")
    deviation = x - x.mean(axis=0, keepdims=True)
    rms = float(np.sqrt(np.mean(np.square(x))))
    spread_ = float(np.mean(np.sqrt(np.mean(np.square(deviation), axis=0))))
    return {
        "rms": rms,
        "spread": spread_,
        "ratio": spread_ / max(rms, 1e-30),
        "move": float(np.mean(np.abs(deviation))),
    }


def colour_follow(outputs, styles, chroma=False) -> dict[str, float]:
    """Whether, and how far, the output's palette follows the style's.

    Over the styles, the output's mean colour and the style image's, each
    centred on its mean over the styles, are compared channel by channel:
    `r` is their Pearson correlation (the direction: 1 when the palette
    moves the way the style's does, ~0 for one palette, or for palettes that
    change with the style at random, which `spread` cannot tell apart from
    stylization); `slope` is the least-squares fraction of the style's
    colour change that the output takes on (the size: ~0 for a shift too
    small to see, whatever its `r`). AdaIN, which copies the style's channel
    statistics, has both near 1 once trained. What the CPU proxy asks the strip
    to show, as numbers.

    With `chroma=True` each mean colour first loses its grey level (the mean
    of its channels), so that only hue counts: a model whose output gets
    lighter under a light style and darker under a dark one, in the same
    hue, scores ~0 there and high without it.

    Args:
      outputs: `[S, H, W, 3]`, one content image under each style.
      styles: `[S, H2, W2, 3]`, the styles, S >= 3.
      chroma: compare the colours' departures from grey only.

    Returns:
      `{"r": ..., "slope": ...}` (both 0 when either side does not vary).
    """
    out = np.asarray(outputs, np.float64).mean(axis=(1, 2))
    ref = np.asarray(styles, np.float64).mean(axis=(1, 2))
    if len(out) != len(ref) or len(out) < 3:
        raise ValueError(
            f"colour_follow needs one output per style and at least 3 styles, got "
            f"{len(out)} outputs for {len(ref)} styles"
        )
    if chroma:
        out = out - out.mean(axis=-1, keepdims=True)
        ref = ref - ref.mean(axis=-1, keepdims=True)
    out, ref = out - out.mean(axis=0), ref - ref.mean(axis=0)
    covariance, out_power, ref_power = np.sum(out * ref), np.sum(out**2), np.sum(ref**2)
    # Rounding noise (a grey output in chroma) is not a palette that varies.
    if ref_power <= 1e-20 or out_power <= 1e-12 * ref_power:
        return {"r": 0.0, "slope": 0.0}
    return {
        "r": float(covariance / np.sqrt(out_power * ref_power)),
        "slope": float(covariance / ref_power),
    }


def palette_follow(outputs, styles) -> dict[str, dict[str, float]]:
    """`colour_follow` with and without the grey level: `{"colour_follow", "chroma_follow"}`."""
    return {
        "colour_follow": colour_follow(outputs, styles),
        "chroma_follow": colour_follow(outputs, styles, chroma=True),
    }


def hue_headroom(encoder, outputs, styles, batch_size=8) -> dict[str, float]:
    """The share of the Gram style loss (Eq. 4) that the outputs leave in their mean colour.

    Each output is scored against its style twice: as it is, and with its
    mean colour moved to the style's (a shift per channel, clipped to
    [0, 1], so its pattern and contrast stay). `headroom` is
    `1 - shifted / as_is` over all pairs: ~0 when the outputs already take
    their styles' mean colours, or when the loss does not care about them;
    1 when the mean colour is all that separates them from their styles.
    A palette that ignores the style while the headroom is large is lost in
    the model's conditioning, not in its objective (the CPU proxy: 0.19
    at step 600, docs/experiments/style_conditioning.md).

    Args:
      encoder: the `VGGEncoder` of the objective (its units).
      outputs: `[S, H, W, 3]`, output i stylized with style i (clipped to
        [0, 1] here, as images are evaluated).
      styles: `[S, H2, W2, 3]` in [0, 1].
      batch_size: pairs per VGG pass.

    Returns:
      `{"as_is": ..., "shifted": ..., "headroom": ...}`: the mean style loss
      of the pairs (`metrics.perceptual_loss`'s `style`) before and after
      the shift, and the share the shift removes.
    """
    outputs = np.clip(np.asarray(outputs, np.float32), 0.0, 1.0)
    styles = np.asarray(styles, np.float32)
    if len(outputs) != len(styles):
        raise ValueError(
            f"hue_headroom needs one output per style, got {len(outputs)} outputs for {len(styles)} styles"
        )
    shift = styles.mean(axis=(1, 2), keepdims=True) - outputs.mean(axis=(1, 2), keepdims=True)
    shifted = np.clip(outputs + shift, 0.0, 1.0)
    totals = {"as_is": 0.0, "shifted": 0.0}
    for start in range(0, len(styles), batch_size):
        part = slice(start, start + batch_size)
        target = metrics.encode(encoder, styles[part])
        for key, images in (("as_is", outputs[part]), ("shifted", shifted[part])):
            # style_loss averages over the batch: weigh each batch by its size.
            terms = losses.style_loss(metrics.encode(encoder, images), target)
            totals[key] += float(sum(terms.values())) * len(images)
    as_is, after = (totals[k] / len(styles) for k in ("as_is", "shifted"))
    return {"as_is": as_is, "shifted": after, "headroom": 1.0 - after / max(as_is, 1e-30)}


def colour_probe(
    vectors, images, part="chroma", folds=3, ridges=(1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
) -> float:
    """How much of the images' mean colours a linear read of `vectors` recovers.

    Ridge regression from one vector per image (e.g. `v_r`) to that image's
    mean colour, scored by cross-validated R^2 over `folds` contiguous folds
    (standardised inputs; the best of `ridges`, each a multiple of the
    training set's size). ~1: the colour is linearly in the vectors, so a
    decoder could read it; ~0 or below: it is not. `colour_follow` then says
    whether the decoder does. `part` picks what is predicted: the colour's
    departure from grey (`"chroma"`, as `colour_follow(chroma=True)`
    compares) or the grey level alone (`"grey"`).

    Args:
      vectors: `[N, D]`, N >= 3 * folds.
      images: `[N, H, W, 3]` (or `[N, 3]` mean colours).
      part: `"chroma"` or `"grey"`.

    Returns:
      R^2, a float <= 1.
    """
    x = np.asarray(vectors, np.float64).reshape(len(vectors), -1)
    y = np.asarray(images, np.float64)
    y = y.reshape(len(y), -1, 3).mean(axis=1)
    if part not in ("chroma", "grey"):
        raise ValueError(f"part must be 'chroma' or 'grey', got {part!r}")
    grey = y.mean(axis=-1, keepdims=True)
    y = y - grey if part == "chroma" else grey
    if len(x) != len(y) or len(x) < 3 * folds:
        raise ValueError(
            f"colour_probe needs one vector per image and at least {3 * folds} images, got "
            f"{len(x)} vectors for {len(y)} images"
        )
    bounds = np.linspace(0, len(x), folds + 1).astype(int)
    # Each fold's standardisation and Gram matrix serve every ridge.
    residual, total = np.zeros(len(ridges)), 0.0
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        train = np.r_[0:lo, hi : len(x)]
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-8
        xt, xv = (x[train] - mu) / sd, (x[lo:hi] - mu) / sd
        y_mean = y[train].mean(0)
        gram, xty = xt.T @ xt, xt.T @ (y[train] - y_mean)
        for i, ridge in enumerate(ridges):
            w = np.linalg.solve(gram + ridge * len(train) * np.eye(x.shape[1]), xty)
            residual[i] += np.sum((y[lo:hi] - y_mean - xv @ w) ** 2)
        total += np.sum((y[lo:hi] - y[lo:hi].mean(0)) ** 2)
    return float(np.max(1.0 - residual / max(total, 1e-30)))


def colour_report(model, content, style, batch_size=8) -> dict[str, dict]:
    """Whether `v_c`, `v_r` carry each image's colour and whether the decoder paints it (`bench.colour_probe`).

    For pairs `(content[i], style[i])`: `colour_probe` of each image's mean
    colour from its own `v_c` and `v_r` (`v_c_c`, `v_r_c`, `v_c_s`, `v_r_s`;
    under the AdaIN fusion `v_c` is the target mean, the colour's natural
    carrier), and of the output's colour (`c2c` from its content, `s2c`
    from its style: high when the output's colour is a function of it, at
    any strength); and `colour_follow` of `c2c` against its content and of
    `s2c` against its style (the strength), each for the chroma and the
    grey level apart.

    Args:
      model: an `ExchangeStyleTransfer`, or any callable with its outputs.
      content, style: `[N, H, W, 3]` in [0, 1], N >= 9.
      batch_size: pairs per forward pass.

    Returns:
      `{"carried": {"v_r_c/chroma": R^2, ..., "s2c/chroma": R^2, ...},
      "painted": {"c2c/chroma": {"slope", "r"}, ...}}`.
    """
    keys = ("v_c_c", "v_r_c", "v_c_s", "v_r_s", "c2c", "s2c")
    parts = {k: [] for k in keys}
    for start in range(0, len(content), batch_size):
        out = model(content[start : start + batch_size], style[start : start + batch_size])
        for k in keys:
            parts[k].append(np.asarray(out[k], np.float32))
    got = {k: np.concatenate(v) for k, v in parts.items()}
    got["c2c"], got["s2c"] = np.clip(got["c2c"], 0, 1), np.clip(got["s2c"], 0, 1)
    result = {"carried": {}, "painted": {}}
    for x, images, output in (("c", content, "c2c"), ("s", style, "s2c")):
        for part in ("chroma", "grey"):
            for key in (f"v_c_{x}", f"v_r_{x}"):
                result["carried"][f"{key}/{part}"] = colour_probe(got[key], images, part)
            means = got[output].mean(axis=(1, 2))
            result["carried"][f"{output}/{part}"] = colour_probe(means, images, part)
    for name, images in (("c2c", content), ("s2c", style)):
        result["painted"][f"{name}/chroma"] = colour_follow(got[name], images, chroma=True)
        result["painted"][f"{name}/grey"] = colour_follow(_grey(got[name]), _grey(images))
    return result


def _grey(images):
    """`[N, 1, 1, 3]`: each image's grey level in all three channels (`colour_follow` of it)."""
    grey = np.asarray(images, np.float64).mean(axis=(1, 2, 3))
    return np.broadcast_to(grey[:, None, None, None], (len(grey), 1, 1, 3))


def format_follow(follow) -> str:
    """A `colour_follow` result as `slope (r)`; `nan` for None."""
    return "nan" if follow is None else f"{follow['slope']:.2f} ({follow['r']:.2f})"


def format_colour_report(result, title) -> str:
    """`colour_report` as a table: R^2 of the probes, then slope (r) of the outputs."""
    carried, painted = result["carried"], result["painted"]
    rows = [
        title,
        f"{'':36}{'chroma':>14}{'grey':>14}",
        *(
            f"{f'{key} carries its image (R^2)':36}"
            f"{carried[f'{key}/chroma']:>14.2f}{carried[f'{key}/grey']:>14.2f}"
            for key in ("v_c_c", "v_r_c", "v_c_s", "v_r_s")
        ),
        *(
            f"{f'{name} carries {ref} (R^2)':36}"
            f"{carried[f'{name}/chroma']:>14.2f}{carried[f'{name}/grey']:>14.2f}"
            for name, ref in (("c2c", "its content"), ("s2c", "its style"))
        ),
        *(
            f"{f'{name} paints {ref} (slope (r))':36}"
            f"{format_follow(painted[f'{name}/chroma']):>14}"
            f"{format_follow(painted[f'{name}/grey']):>14}"
            for name, ref in (("c2c", "its content"), ("s2c", "its style"))
        ),
    ]
    return "\n".join(rows)


def stage_tensors(model, content, styles, batch_size=8) -> dict[str, np.ndarray]:
    """Every stage of `STAGES` for one content image under each style.

    Args:
      model: an `ExchangeStyleTransfer` (trained, fresh or a release).
      content: `[H, W, 3]` or `[1, H, W, 3]` in [0, 1].
      styles: `[S, H2, W2, 3]` in [0, 1], S >= 2.
      batch_size: styles per forward pass.

    Returns:
      Dict stage -> `[S, ...]` float32 array (`s2c` clipped to [0, 1], as
      `stylize` returns it).
    """
    content = np.asarray(content, np.float32)
    if content.ndim == 3:
        content = content[None]
    styles = np.asarray(styles, np.float32)
    content, f_vgg_c, _ = ops.encode(model.encoder, content, "content", output_all=False)
    parts = {name: [] for name in STAGES}
    for start in range(0, len(styles), batch_size):
        batch = styles[start : start + batch_size]
        _, f_vgg_s, _ = ops.encode(model.encoder, batch, "style", output_all=False)
        f_vgg = keras.ops.repeat(f_vgg_c, len(batch), axis=0)
        codes = model.analyze(f_vgg, f_vgg_s)
        code = model.decoder_c.content_code(model.purify(f_vgg, codes["v_w_c"]))
        r_fusion = model.decoder_c.fuse(code, codes["v_c_s"], codes["v_r_s"])
        tiled = keras.ops.repeat(content, len(batch), axis=0)
        stage = dict(codes, R_fusion=r_fusion, s2c=model.render_content(r_fusion, tiled))
        for name in STAGES:
            parts[name].append(np.asarray(keras.ops.convert_to_numpy(stage[name]), np.float32))
    return {name: np.concatenate(p, axis=0) for name, p in parts.items()}


def style_dependence(model, content, styles, batch_size=8) -> dict[str, dict[str, float]]:
    """`spread` of every stage of `STAGES` across `styles`, for one content image.

    Returns:
      Ordered dict stage -> `{"rms", "spread", "ratio", "move"}`.
    """
    return {
        name: spread(values)
        for name, values in stage_tensors(model, content, styles, batch_size).items()
    }


def format_report(report, title=None) -> str:
    """A plain-text table: RMS, spread / RMS and mean |deviation| per stage."""
    lines = [title] if title else []
    lines.append(f"{'stage':<10}{'RMS':>10}{'spread/RMS':>12}{'mean |dev|':>12}")
    for name, s in report.items():
        lines.append(f"{name:<10}{s['rms']:>10.4g}{100 * s['ratio']:>11.2f}%{s['move']:>12.4g}")
    return "\n".join(lines)
