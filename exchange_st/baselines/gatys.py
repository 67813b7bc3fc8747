"""Optimisation-based style transfer of Gatys et al. [6] on the shared VGG encoder."""

import numpy as np
import tensorflow as tf

from exchange_st.nn import losses, ops
from exchange_st.nn.vgg import FEATURE_NAMES

OPTIMIZERS = ("adam", "lbfgs")
# The trade-off of Eq. 7 (lambda_ps / lambda_pc = 2 / 1), so the optimiser and
# the feed-forward model aim at the same balance of content and style.
DEFAULT_STYLE_WEIGHT = 2.0
# Adam moves pixels in [0, 1]; 0.02 per step restyles an image within a few
# hundred steps without oscillating (the TensorFlow style-transfer tutorial's
# value for the same parameterisation).
DEFAULT_ADAM_LR = 0.02
# L-BFGS memory (pairs of steps kept), as in the usual Torch/Scipy defaults.
_LBFGS_HISTORY = 10
# Backtracking line search: Armijo constant and maximum step halvings.
_ARMIJO_C = 1e-4
_MAX_HALVINGS = 10


class GatysStylizer:
    """Optimisation-based transfer of [6] with its steps compiled once per image size.

    The objective is
    `L(x) = content_weight * content_loss(E(x), E(I_c))
            + style_weight * sum_l style_loss_l(x, I_s)`,
    content at relu4_1 (Eq. 3), Gram loss at relu1_1..relu4_1 (Eq. 4), both
    from `exchange_st.nn.losses`, so [6] optimises exactly the terms of the
    Table 1 metric (with these weights).

    The image is parameterised directly by its pixels, initialised from the
    content image (so the result keeps its structure within the iteration
    budget) and kept in [0, 1] by clipping after every update (projected
    optimisation). [6] used L-BFGS; Adam is the default here because each
    step costs exactly one forward/backward pass, so its time is
    predictable (Table 2), and its whole loop runs inside one `tf.function`.

    Args:
      encoder: the fixed `VGGEncoder` (the same as the metric's).
      content_weight, style_weight: weights of the two terms.
      optimizer: `"adam"` or `"lbfgs"`.
      lr: Adam learning rate (default 0.02) or, for L-BFGS, the largest
        per-pixel change of the first step (default 0.02).
    """

    def __init__(
        self,
        encoder,
        content_weight=1.0,
        style_weight=DEFAULT_STYLE_WEIGHT,
        optimizer="adam",
        lr=None,
    ):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.encoder = encoder
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.optimizer = optimizer
        self.lr = DEFAULT_ADAM_LR if lr is None else float(lr)
        # Traced once per image size; every call with that size reuses them.
        self._value_and_grad = tf.function(self._value_and_grad_eager, reduce_retracing=True)
        self._adam_loop = tf.function(self._adam_loop_eager, reduce_retracing=True)

    def objective(self, image, content_target, style_feats):
        """`(total, content, style)` scalars for `image` `[B, H, W, 3]`."""
        feats = self.encoder(image)
        content = losses.content_loss(feats[-1], content_target)
        per_layer = losses.style_loss(feats, style_feats)
        style = tf.add_n([per_layer[n] for n in FEATURE_NAMES])
        return self.content_weight * content + self.style_weight * style, content, style

    def _value_and_grad_eager(self, image, content_target, style_feats):
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, _, _ = self.objective(image, content_target, style_feats)
        return total, tape.gradient(total, image)

    def _adam_loop_eager(self, image, content_target, style_feats, iterations):
        """Projected Adam (Kingma & Ba, default betas) as one graph loop."""
        beta1, beta2, eps = 0.9, 0.999, 1e-7
        history = tf.TensorArray(tf.float32, size=iterations)

        def body(i, x, m, v, history):
            value, grad = self._value_and_grad_eager(x, content_target, style_feats)
            m = beta1 * m + (1.0 - beta1) * grad
            v = beta2 * v + (1.0 - beta2) * tf.square(grad)
            t = tf.cast(i + 1, tf.float32)
            m_hat = m / (1.0 - beta1**t)
            v_hat = v / (1.0 - beta2**t)
            x = tf.clip_by_value(x - self.lr * m_hat / (tf.sqrt(v_hat) + eps), 0.0, 1.0)
            return i + 1, x, m, v, history.write(i, value)

        zeros = tf.zeros_like(image)
        _, image, _, _, history = tf.while_loop(
            lambda i, *_: i < iterations,
            body,
            (tf.constant(0), image, zeros, zeros, history),
        )
        return image, history.stack()

    def _lbfgs(self, image, content_target, style_feats, iterations):
        """Projected L-BFGS with a backtracking (Armijo) line search.

        The two-loop recursion gives the direction; each trial point is
        clipped into [0, 1] and accepted when it lowers the objective enough.
        The first step is scaled so no pixel moves by more than `lr`; later
        ones start at step 1 with the usual `s.y / y.y` initial Hessian
        scale. Pairs with non-positive curvature (possible after clipping)
        are not stored. The objective and gradient run compiled; the
        recursion is eager (a few vector operations per iteration).
        """

        def value_and_grad(x):
            return self._value_and_grad(x, content_target, style_feats)

        def first_step(g):
            return self.lr / max(float(tf.reduce_max(tf.abs(g))), 1e-12)

        x = image
        f, g = value_and_grad(x)
        history = [float(f)]
        s_list, y_list = [], []
        for _ in range(iterations - 1):
            q = g
            alphas = []
            for s, y in reversed(list(zip(s_list, y_list))):
                a = tf.reduce_sum(s * q) / tf.reduce_sum(y * s)
                alphas.append(a)
                q = q - a * y
            if s_list:
                gamma = tf.reduce_sum(s_list[-1] * y_list[-1]) / tf.reduce_sum(y_list[-1] ** 2)
                t = 1.0
            else:
                gamma, t = 1.0, first_step(g)
            r = gamma * q
            for (s, y), a in zip(zip(s_list, y_list), reversed(alphas)):
                b = tf.reduce_sum(y * r) / tf.reduce_sum(y * s)
                r = r + s * (a - b)
            direction = -r
            if float(tf.reduce_sum(direction * g)) >= 0.0:
                # Not a descent direction (stale curvature): restart from -g.
                s_list, y_list = [], []
                direction, t = -g, first_step(g)
            for _ in range(_MAX_HALVINGS):
                x_new = tf.clip_by_value(x + t * direction, 0.0, 1.0)
                f_new, g_new = value_and_grad(x_new)
                decrease = _ARMIJO_C * float(tf.reduce_sum(g * (x_new - x)))
                if float(f_new) <= float(f) + decrease:
                    break
                t *= 0.5
            else:
                # No sufficient decrease: keep the image, forget the memory.
                s_list, y_list = [], []
                history.append(float(f))
                continue
            s, y = x_new - x, g_new - g
            if float(tf.reduce_sum(s * y)) > 1e-10:
                s_list.append(s)
                y_list.append(y)
                if len(s_list) > _LBFGS_HISTORY:
                    s_list.pop(0)
                    y_list.pop(0)
            x, f, g = x_new, f_new, g_new
            history.append(float(f))
        return x, history

    def stylize(self, content, style, iterations=500, return_losses=False):
        """Optimises an image for `content` `[B, H, W, 3]` and `style` `[B or 1, H2, W2, 3]`.

        Args:
          content, style: float32 in [0, 1], any sizes >= 16.
          iterations: optimiser steps (500 in the paper's comparison); an
            L-BFGS step may evaluate the objective more than once (line search).
          return_losses: also return the objective before every iteration.

        Returns:
          `[B, H, W, 3]` float32 in [0, 1]; with `return_losses`, a pair
          `(image, losses)`, `losses` a list of `iterations` floats.
        """
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        content = ops.validate_images(content, "content")
        style = ops.validate_images(style, "style")
        content_target = self.encoder(content, output_all=False)
        style_feats = self.encoder(style)
        if self.optimizer == "adam":
            image, history = self._adam_loop(
                content, content_target, style_feats, tf.constant(int(iterations))
            )
            history = history.numpy().astype(np.float64).tolist()
        else:
            image, history = self._lbfgs(content, content_target, style_feats, int(iterations))
        image = tf.clip_by_value(image, 0.0, 1.0)
        return (image, history) if return_losses else image


def gatys_stylize(
    content,
    style,
    encoder,
    iterations=500,
    content_weight=1.0,
    style_weight=DEFAULT_STYLE_WEIGHT,
    optimizer="adam",
    lr=None,
    return_losses=False,
):
    """Stylizes by optimising the image's pixels (Gatys et al. [6]); see `GatysStylizer`.

    A one-off call; reuse a `GatysStylizer` for many images of one size so
    its graphs are traced once.

    Args:
      content: `[B, H, W, 3]` float32 in [0, 1] (any size >= 16).
      style: `[B or 1, H2, W2, 3]` in [0, 1].
      encoder: the fixed `VGGEncoder` (the same as the metric's).
      iterations: optimiser steps (500 as in the paper's comparison).
      content_weight, style_weight: weights of the content and style terms.
      optimizer: `"adam"` or `"lbfgs"`.
      lr: see `GatysStylizer`.
      return_losses: also return the objective before every iteration.

    Returns:
      `[B, H, W, 3]` float32 in [0, 1]; with `return_losses`, a pair
      `(image, losses)` where `losses` is a list of `iterations` floats.
    """
    stylizer = GatysStylizer(encoder, content_weight, style_weight, optimizer, lr)
    return stylizer.stylize(content, style, iterations, return_losses)
