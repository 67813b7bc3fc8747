"""The paper's figures from a model, as pictures: the stylization matrix (Fig. 15), the
methods side by side (Fig. 5), Eq. 8's alpha strip (Fig. 9), two styles by mask (Fig. 10)
and the four outputs (Fig. 17).

Each returns one `[H, W, 3]` picture in [0, 1] (`image_io.make_grid`); `tools/figures.py`
writes them from a release or a run. Backend-neutral.
"""

from __future__ import annotations

import keras
import numpy as np

from exchange_st.data import image_io

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def matrix(model, contents, styles) -> np.ndarray:
    """Fig. 15: the styles on top, then each content and its stylizations."""
    rows = [[np.ones_like(styles[0])] + list(styles)]
    for c in contents:
        rows.append([c] + [_numpy(model.stylize(c[None], s[None]))[0] for s in styles])
    return image_io.make_grid(rows, pad=4)


def comparison(stylizers, contents, styles) -> np.ndarray:
    """Fig. 5: per pair, the content, the style, then each method's stylization in order.

    Args:
      stylizers: callables `(content [1, H, W, 3], style [1, H2, W2, 3]) -> [1, H, W, 3]`,
        one per column (e.g. the models' `stylize`).
      contents, styles: the pairs, `[H, W, 3]` each, content i with style i.
    """
    rows = []
    for c, s in zip(contents, styles):
        outputs = [np.clip(_numpy(fn(c[None], s[None]))[0], 0.0, 1.0) for fn in stylizers]
        rows.append([c, s] + outputs)
    return image_io.make_grid(rows, pad=4)


def alpha_strip(model, content, style) -> np.ndarray:
    """Fig. 9: the content, then Eq. 8's trade-off from alpha 0 to 1, then the style."""
    cells = [content] + [_numpy(model.stylize(content[None], style[None], a))[0] for a in ALPHAS]
    return image_io.make_grid([cells + [style]], pad=4)


def mask_figure(model, content, mask, first, second) -> np.ndarray:
    """Fig. 10: the first style where the mask is bright, the second elsewhere."""
    region = (mask[..., 0] > 0.5).astype(np.float32)
    out = model.stylize_regions(
        content[None], [first[None], second[None]], [region[None], 1.0 - region[None]]
    )
    shown = np.repeat(mask, 3, axis=-1)
    return image_io.make_grid([[content, shown, first, second, _numpy(out)[0]]], pad=4)


def four_outputs(model, contents, styles) -> np.ndarray:
    """Fig. 17: I_c, I_s, and the model's four images I_s->c, I_c->s, I_c->c, I_s->s."""
    rows = []
    for c, s in zip(contents, styles):
        out = model(c[None], s[None])
        images = [np.clip(_numpy(out[k])[0], 0.0, 1.0) for k in ("s2c", "c2s", "c2c", "s2s")]
        rows.append([c, s] + images)
    return image_io.make_grid(rows, pad=4)
