"""The rule a trained EFANet passes before it ships as `pretrained/efanet/`, fixed before the first release.

Low training losses do not make a model stylize (the paper's recipe reached
them painting one image for every style), so the rule looks at pictures of
the evaluation set (`../shared/images`, never trained on):

1. the GPU sweep's rule: `v_r_s`'s spread across the 20 evaluation styles
   (first content, 256 px) >= 5% of its RMS (the style reaches the decoder);
   two very different styles (la_muse, sketch) move the picture by >= 0.06
   on average at 512 px; the outputs' luminance correlates with their
   content's >= 0.4 at 512 px (the picture follows the content);
2. the palette follows the style: chroma follow >= 0.3 with r >= 0.7 over
   the 20 evaluation styles (`style_dependence.colour_follow` without the
   grey level, averaged over the contents);
3. Table 1 on the 200 evaluation pairs at 256 px: the Gram style term below
   the content row's (the content returned unchanged, the floor any
   stylization must beat).

A model that passes replaces the shipped release only when its Table 1
total (the same 200 pairs) is lower, at most once per session. Half the
content row's style term is the goal results are reported against.
"""

from __future__ import annotations

MIN_V_R_SPREAD = 0.05
MIN_STYLE_MOVE = 0.06
MIN_CONTENT_CORR = 0.4
MIN_CHROMA_FOLLOW = 0.3
MIN_CHROMA_R = 0.7
RULE = (
    f"v_r_s spread >= {MIN_V_R_SPREAD:.0%} (20 styles, 256 px); style move la_muse vs sketch "
    f">= {MIN_STYLE_MOVE} and luminance correlation with the content >= {MIN_CONTENT_CORR} "
    f"(512 px); chroma follow >= {MIN_CHROMA_FOLLOW} with r >= {MIN_CHROMA_R} (20 styles); "
    "Table 1 Gram style on the 200 pairs at 256 px below the unstylized content's."
)


def verdict(scores: dict) -> tuple[bool, list[str]]:
    """Whether `scores` pass the rule, and each check that fails, in words.

    Args:
      scores: `v_r_spread`, `style_move`, `content_corr` (512 px),
        `chroma_follow` (`{"slope", "r"}`), `table1_style` (the model's Gram
        style term on the 200 pairs) and `content_row_style` (the content
        row's). A missing score fails its check.
    """
    nan = float("nan")
    failed = []

    def check(ok, message):
        if not ok:
            failed.append(message)

    spread = scores.get("v_r_spread", nan)
    check(spread >= MIN_V_R_SPREAD, f"v_r_s spread {spread:.2%} < {MIN_V_R_SPREAD:.0%}")
    move = scores.get("style_move", nan)
    check(move >= MIN_STYLE_MOVE, f"style move {move:.3f} < {MIN_STYLE_MOVE}")
    corr = scores.get("content_corr", nan)
    check(corr >= MIN_CONTENT_CORR, f"content correlation {corr:.2f} < {MIN_CONTENT_CORR}")
    follow = scores.get("chroma_follow") or {}
    slope, r = follow.get("slope", nan), follow.get("r", nan)
    check(
        slope >= MIN_CHROMA_FOLLOW and r >= MIN_CHROMA_R,
        f"chroma follow {slope:.2f} (r {r:.2f}) below {MIN_CHROMA_FOLLOW} (r {MIN_CHROMA_R})",
    )
    style, floor = scores.get("table1_style", nan), scores.get("content_row_style", nan)
    check(style < floor, f"Table 1 style {style:.4g} not below the content row's {floor:.4g}")
    return not failed, failed


def replaces(candidate: dict, shipped: dict | None) -> bool:
    """Whether a candidate's scores should replace the shipped release's (None: none ships)."""
    if not verdict(candidate)[0]:
        return False
    return shipped is None or candidate["table1_total"] < shipped["table1_total"]
