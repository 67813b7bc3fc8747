"""Several styles in one image, blended in feature space: regions (Fig. 10) and interpolation.

Backend-neutral (`keras.ops`): `ExchangeStyleTransfer.stylize_regions` runs it
on the Keras model, `inference.Stylizer` on a SavedModel's functions.
"""

import keras

from exchange_st.nn import ops


def blend_styles(
    fused_features,
    render_content,
    content,
    styles,
    alpha=1.0,
    weights=None,
    content_masks=None,
    style_masks=None,
):
    """Several styles in one image: regions (Fig. 10) or interpolation, blended in feature space.

    Each style k gives its Eq. 8 map `R_k` (`fused_features`, the analysis
    restricted to content mask k and style mask k when given). The maps are
    averaged with the pixel weights `w_k m_k` (`m_k` the content mask k at
    feature resolution, 1 without masks) and rendered once, so seams and
    mixtures are decoded, not pasted. `R_fusion` is what is blended because
    Eq. 8 already blends it: the decoder renders convex combinations of
    fused maps (the `alpha` trade-off), while blending the style vectors
    `v_c`, `v_r` would mix the two factors of Eq. 2's product separately.

    Without masks this is style interpolation, `R = sum_k w_k R_k` with the
    weights normalised to sum 1. With masks, where weights add up to more
    than 1 (overlaps) they are normalised per pixel, and where they add up
    to less the content's reconstruction `R_fusion_c->c` fills the rest.

    Args:
      fused_features: `(content, style, alpha, content_mask, style_mask) ->
        (R_fusion, content)`, e.g. `ExchangeStyleTransfer.fused_features`.
      render_content: `(R_fusion, content) -> image`, e.g.
        `ExchangeStyleTransfer.render_content`.
      content: `[B, H, W, 3]` in [0, 1].
      styles: list of K style batches `[B or 1, H_k, W_k, 3]`.
      alpha: Eq. 8 trade-off applied to every style.
      weights: K non-negative weights (None: equal).
      content_masks: optional list of K content masks `[B, H, W]` (or `[H, W]`).
      style_masks: optional list of K style masks (entries may be None).

    Returns:
      `[B, H, W, 3]` in [0, 1].
    """
    count = len(styles)
    for name, values in (("content mask", content_masks), ("weight", weights)):
        if not styles or (values is not None and len(values) != count):
            raise ValueError(
                f"need one {name} per style, got {count} styles and "
                f"{None if values is None else len(values)} {name}s"
            )
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"style weights must be >= 0 with a positive sum, got {weights}")
    if content_masks is None:
        weights = [w / sum(weights) for w in weights]
    content = ops.validate_images(content, "content")
    total, weight_sum = None, None
    for k, style in enumerate(styles):
        c_mask = None if content_masks is None else content_masks[k]
        s_mask = None if style_masks is None else style_masks[k]
        r_k, _ = fused_features(content, style, alpha, c_mask, s_mask)
        m = weights[k]
        if c_mask is not None:
            m_pixels = ops.mask_to_features(ops.validate_mask(c_mask, content, "content_mask"))
            m = keras.ops.cast(m_pixels, r_k.dtype) * m
        total = m * r_k if total is None else total + m * r_k
        weight_sum = m if weight_sum is None else weight_sum + m
    if content_masks is None:
        return render_content(total, content)
    # Where masks overlap, average the styles; where none covers a pixel,
    # fall back to plain reconstruction of the content.
    r_c2c, _ = fused_features(content, styles[0], 0.0, None, None)
    covered = keras.ops.minimum(weight_sum, 1.0)
    r_fusion = total / keras.ops.maximum(weight_sum, 1.0) + (1.0 - covered) * r_c2c
    return render_content(r_fusion, content)
