"""Whitening-colouring transform (Li et al. [21]) at relu4_1, decoded by the AdaIN decoder."""

import tensorflow as tf

from exchange_st.nn import ops


def _centred_covariance(features, eps):
    """`[B, h, w, C]` -> (mean `[B, 1, C]`, centred `[B, N, C]`, covariance `[B, C, C]`), float64."""
    f = tf.cast(features, tf.float64)
    shape = tf.shape(f)
    flat = tf.reshape(f, [shape[0], -1, shape[3]])
    mean = tf.reduce_mean(flat, axis=1, keepdims=True)
    centred = flat - mean
    n = tf.cast(tf.shape(flat)[1], tf.float64)
    cov = tf.matmul(centred, centred, transpose_a=True) / tf.maximum(n - 1.0, 1.0)
    cov += eps * tf.eye(shape[3], dtype=tf.float64)
    return mean, centred, cov


def wct(content_feat, style_feat, alpha=1.0, eps=1e-5):
    """Whitening and colouring transform, Eq. 1-4 of [21], at one layer.

    `f_cs = E_s D_s^(1/2) E_s^T  E_c D_c^(-1/2) E_c^T (f_c - m_c) + m_s`, with
    `E D E^T` the eigendecompositions (`tf.linalg.eigh`) of the channel
    covariances regularised by `eps * I`, so that (near-)zero eigenvalues of
    small or flat images do not blow up the whitening. Computed in float64:
    the 512 x 512 eigendecomposition of float32 covariances loses the small
    eigenvalues the whitening divides by.

    Args:
      content_feat: `[B, h, w, C]`.
      style_feat: `[B or 1, h2, w2, C]` (any size).
      alpha: blend `alpha * f_cs + (1 - alpha) * f_c` (Eq. 5 of [21]).
      eps: covariance regulariser (in the units of the features).

    Returns:
      `[B, h, w, C]` features (dtype of `content_feat`) whose channel mean and
      covariance are the style's (up to `eps`).
    """
    m_c, centred_c, cov_c = _centred_covariance(content_feat, eps)
    m_s, _, cov_s = _centred_covariance(style_feat, eps)
    d_c, e_c = tf.linalg.eigh(cov_c)
    d_s, e_s = tf.linalg.eigh(cov_s)
    # Regularisation keeps the eigenvalues >= eps up to round-off; the floor
    # guards the square roots against that round-off.
    d_c = tf.maximum(d_c, eps)
    d_s = tf.maximum(d_s, eps)
    whiten = tf.matmul(e_c * tf.math.rsqrt(d_c)[:, None, :], e_c, transpose_b=True)
    colour = tf.matmul(e_s * tf.sqrt(d_s)[:, None, :], e_s, transpose_b=True)
    # Row-vector convention: x -> x W^T; both matrices are symmetric.
    transformed = tf.matmul(tf.matmul(centred_c, whiten), colour) + m_s
    out = tf.reshape(tf.cast(transformed, content_feat.dtype), tf.shape(content_feat))
    if isinstance(alpha, (int, float)) and alpha == 1.0:
        return out
    alpha = tf.cast(alpha, content_feat.dtype)
    return content_feat + alpha * (out - content_feat)


class WCTStylizer:
    """Universal style transfer [21] with one WCT at relu4_1 and the AdaIN decoder.

    [21] cascades WCTs at relu5_1..relu1_1 with five trained inversion
    decoders; here a single level at relu4_1 is decoded by the decoder of an
    `AdaINNet`, which was trained to invert relu4_1 statistics-matched
    features and so inverts WCT features too (same encoder, same layer).

    Args:
      adain_net: a built (trained) `baselines.adain.AdaINNet`; its encoder
        and decoder are used, nothing is copied.
      eps: covariance regulariser of `wct`.
    """

    def __init__(self, adain_net, eps=1e-5):
        self.adain_net = adain_net
        self.eps = eps

    def stylize(self, content, style, alpha=1.0):
        """Stylizes `[B, H, W, 3]` content with `[B or 1, H2, W2, 3]` style.

        Returns:
          `[B, H, W, 3]` float32 in [0, 1].
        """
        net = self.adain_net
        content = ops.validate_images(content, "content")
        style = ops.validate_images(style, "style")
        f_c = net.encoder(ops.pad_to_multiple(content), output_all=False)
        f_s = net.encoder(ops.pad_to_multiple(style), output_all=False)
        image = ops.crop_to(net.decoder(wct(f_c, f_s, alpha, self.eps)), content)
        return tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 1.0)
