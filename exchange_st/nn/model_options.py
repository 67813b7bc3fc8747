"""The choices of `ExchangeStyleTransfer` that the paper leaves open: their values, the measured scales they use, and their checks."""

from exchange_st.nn import decoder as decoder_lib

VGG_CHANNELS = 512
INITIALIZATIONS = ("scaled", "keras", "scaled_kernels", "scaled_zero_heads", "equalized")
CODE_NORMALIZATIONS = ("none", "l2")
PURIFICATIONS = ("attention", "normalized")
# RMS of the content code at initialisation: VGG features divided by their
# mean activation (vgg.FEATURE_SCALES) have RMS ~2.4 and the fresh purifier
# halves them (v_w ~ 0.5); measured 1.30 on training crops.
CONTENT_CODE_RMS = 1.3
# RMS of the fresh codes (f'_com, f_c, f_s) the style heads read, measured on
# training crops with the ImageNet VGG, per compressor initializer:
# 0.034-0.038 with Keras' Glorot kernels, 0.83-1.24 with He's
# (`python -m bench.diagnose ... --compressor_initializer=he_normal`).
CODE_RMS = {"glorot_uniform": 0.036, "he_normal": 1.1}
# Mean colour of the training photos and artworks: what a fresh decoder
# paints before it has learned anything (the L1 optimum of a constant image
# is near it).
IMAGE_MEAN_RGB = (0.50, 0.48, 0.43)


def validate(
    *,
    initialization,
    purification,
    code_normalization,
    compressor_initializer,
    fusion_mode,
    num_exchange_blocks,
):
    """Raises a one-sentence `ValueError` for the first option out of its range."""
    if initialization not in INITIALIZATIONS:
        raise ValueError(f"initialization must be one of {INITIALIZATIONS}, got {initialization!r}")
    if purification not in PURIFICATIONS:
        raise ValueError(f"purification must be one of {PURIFICATIONS}, got {purification!r}")
    if code_normalization not in CODE_NORMALIZATIONS:
        raise ValueError(
            f"code_normalization must be one of {CODE_NORMALIZATIONS}, got {code_normalization!r}"
        )
    if initialization == "scaled_kernels" and compressor_initializer not in CODE_RMS:
        raise ValueError(
            f"initialization='scaled_kernels' needs the fresh codes' RMS, measured only for "
            f"compressor_initializer in {sorted(CODE_RMS)}, got {compressor_initializer!r}"
        )
    if fusion_mode not in decoder_lib.FUSION_MODES:
        raise ValueError(
            f"fusion_mode must be one of {decoder_lib.FUSION_MODES}, got {fusion_mode!r}"
        )
    if num_exchange_blocks < 0:
        raise ValueError(f"num_exchange_blocks must be >= 0, got {num_exchange_blocks}")
