"""Inference on the content branch: `I_s->c` with Eq. 8's alpha, masks and regions.

The training `call` renders all four images of Fig. 2 and returns the codes
Eq. 6 needs; stylization pays only for what `I_s->c` reads: one encoder pass
per image, the pair's analysis, and `decoder_c` (twice the fusion, not the
decoder, when alpha < 1).
"""

import keras

from exchange_st.nn import ops
from exchange_st.nn.blending import blend_styles


class StylizationMixin:
    """`stylize` and its parts for a model with the `ExchangeStyleTransfer` layout.

    The host model provides `encoder` (`VGGEncoder`), `analyze(f_vgg_c,
    f_vgg_s, mask_c, mask_s)` (the codes of Sec. 3.1-3.2), `purify(f_vgg,
    v_w)` and `decoder_c` (`content_code`, `fuse`, `render`).
    """

    def stylize(self, content, style, alpha=1.0, content_mask=None, style_mask=None):
        """Inference: `I_s->c` with the Eq. 8 trade-off and optional masks.

        Eq. 8 blends in feature space, before the shared decoder renders:
        `R_fusion = (1 - alpha) R_fusion_c->c + alpha R_fusion_s->c`.
        With masks, the pairwise analysis only sees the masked pixels of each
        image (Fig. 10), and the content outside `content_mask` keeps the
        reconstruction path (`alpha = 0`) so that only the region is styled.

        Args:
          content: `[B, H, W, 3]` in [0, 1].
          style: `[B, H2, W2, 3]` or `[1, H2, W2, 3]` (one style for all).
          alpha: scalar in [0, 1] (Python float or tensor).
          content_mask: optional `[B, H, W]` (or `[H, W]`, `[B, H, W, 1]`).
          style_mask: optional `[B, H2, W2]` (or `[H2, W2]`, `[B, H2, W2, 1]`).

        Returns:
          `[B, H, W, 3]` float32 stylized images clipped to [0, 1].
        """
        r_fusion, content = self.fused_features(content, style, alpha, content_mask, style_mask)
        return self.render_content(r_fusion, content)

    def fused_features(self, content, style, alpha=1.0, content_mask=None, style_mask=None):
        """`R_fusion` of Eq. 8 for `I_c` and its validated content image.

        Split from `stylize` so that several regions (Fig. 10) can be blended
        in feature space and rendered once (`stylize_regions`).
        """
        content, f_vgg_c, mask_c = ops.encode(
            self.encoder, content, "content", content_mask, output_all=False
        )
        _, f_vgg_s, mask_s = ops.encode(self.encoder, style, "style", style_mask, output_all=False)
        codes = self.analyze(f_vgg_c, f_vgg_s, mask_c, mask_s)
        return self.content_fusion(f_vgg_c, codes, alpha, mask_c), content

    def content_fusion(self, f_vgg_c, codes, alpha=1.0, mask_c=None):
        """Eq. 8 on the content branch: `R_fusion` from relu4_1 and the pair's codes.

        `R_fusion = (1 - alpha) R_fusion_c->c + alpha R_fusion_s->c`, both
        fused from the same purified content code; outside `mask_c` (where
        given) the content keeps `R_fusion_c->c`. `tiling.fuse_banded` calls
        this on bands of rows.

        Args:
          f_vgg_c: `[B, h, w, 512]` relu4_1 of the (padded) content.
          codes: `analyze(...)` of the pair.
          alpha: scalar in [0, 1] (Python float or tensor).
          mask_c: optional `[B, h, w, 1]` feature-resolution content weights.

        Returns:
          `[B, h, w, 512]`.
        """
        code = self.decoder_c.content_code(self.purify(f_vgg_c, codes["v_w_c"]))
        r_s2c = self.decoder_c.fuse(code, codes["v_c_s"], codes["v_r_s"])
        if isinstance(alpha, (int, float)) and alpha == 1.0 and mask_c is None:
            return r_s2c
        alpha = keras.ops.cast(alpha, r_s2c.dtype)
        r_c2c = self.decoder_c.fuse(code, codes["v_c_c"], codes["v_r_c"])
        r_fusion = r_c2c + alpha * (r_s2c - r_c2c)  # Eq. 8
        if mask_c is not None:
            m = keras.ops.cast(mask_c, r_fusion.dtype)
            r_fusion = r_c2c + m * (r_fusion - r_c2c)
        return r_fusion

    def render_content(self, r_fusion, content):
        """Renders a content-branch `R_fusion` to `[B, H, W, 3]` in [0, 1]."""
        image = ops.crop_to(self.decoder_c.render(r_fusion), content)
        return keras.ops.clip(keras.ops.cast(image, "float32"), 0.0, 1.0)

    def stylize_regions(self, content, styles, content_masks, alpha=1.0, style_masks=None):
        """Spatial control (Fig. 10): a different style per content region (`blend_styles`)."""
        return blend_styles(
            self.fused_features,
            self.render_content,
            content,
            styles,
            alpha,
            content_masks=content_masks,
            style_masks=style_masks,
        )
