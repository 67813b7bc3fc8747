"""What a model paints for every content under every style: the matrix the GPU sweep and the release rule score.

From the `[C, S, H, W, 3]` stylizations of C contents by S styles:
Table 1's content and style loss on the pairs content i with style i; the
style move (mean |out(c, a) - out(c, b)| for two very different styles a, b:
0 when the model ignores the style); the luminance correlation of each pair's
output with its content (~0 when the picture does not follow the content);
the colour and chroma follow of each content's row (`style_dependence.palette_follow`,
averaged over the contents) and the hue headroom. Backend-neutral.
"""

from __future__ import annotations

import keras
import numpy as np

from exchange_st.evaluation import metrics, style_dependence


def stylize_matrix(model, contents, styles) -> np.ndarray:
    """`[C, S, H, W, 3]`: content c stylized with style s, for `[C, H, W, 3]` and `[S, H, W, 3]`."""
    return np.stack(
        [
            np.concatenate(
                [keras.ops.convert_to_numpy(model.stylize(c[None], s[None])) for s in styles]
            )
            for c in contents
        ]
    )


def luminance_correlation(outputs, contents) -> float:
    """Mean correlation of each output's luminance with its content's."""
    corr = [
        np.corrcoef(o.mean(-1).ravel(), c.mean(-1).ravel())[0, 1]
        for o, c in zip(np.asarray(outputs), np.asarray(contents))
    ]
    return float(np.nanmean(corr))


def matrix_scores(encoder, matrix, contents, styles, style_names=(), style_a=None, style_b=None):
    """The scores of the module doc for a stylization `matrix` (`stylize_matrix`).

    Args:
      encoder: the VGG encoder of Table 1's metric.
      matrix: `[C, S, H, W, 3]` stylizations.
      contents, styles: the `[C, ...]` and `[S, ...]` images.
      style_names: the styles' names (file stems), for `style_a`, `style_b`.
      style_a, style_b: the two styles of the style move (skipped unless both
        are in `style_names`).

    Returns:
      `{"pairs", "table1": {"content", "style", "total"}, "content_corr",
      "image_std"}` and, with 3 or more styles, `colour_follow`,
      `chroma_follow` (`{"r", "slope"}` averaged over the contents) and
      `hue_headroom`; `style_move` when both styles are named.
    """
    n = min(len(contents), len(styles))
    diagonal = np.stack([matrix[i, i] for i in range(n)])
    table1 = metrics.perceptual_loss(encoder, diagonal, contents[:n], styles[:n])
    result = {
        "pairs": n,
        "table1": {k: table1[k] for k in ("content", "style", "total")},
        "content_corr": luminance_correlation(diagonal, contents[:n]),
        "image_std": float(diagonal.std(axis=(1, 2)).mean()),
    }
    if len(styles) >= 3:
        rows = [style_dependence.palette_follow(row, styles) for row in matrix]
        for key in rows[0]:
            result[key] = {k: float(np.mean([f[key][k] for f in rows])) for k in ("r", "slope")}
        result["hue_headroom"] = float(
            np.mean(
                [style_dependence.hue_headroom(encoder, row, styles)["headroom"] for row in matrix]
            )
        )
    names = list(style_names)
    if style_a in names and style_b in names:
        ia, ib = names.index(style_a), names.index(style_b)
        result["style_move"] = float(np.abs(matrix[:, ia] - matrix[:, ib]).mean())
    return result
