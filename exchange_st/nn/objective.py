"""A model that owns its training objective: `compute_loss` and per-term metrics for `fit`.

Backend-neutral: `keras.Model.fit` on TensorFlow or JAX calls `call` on the
batch `{"content": ..., "style": ...}` and then `compute_loss`, which returns
the total loss and records every term in a `keras.metrics.Mean`, so the terms
appear in fit's logs (and every callback) next to Keras' own `loss`.
"""

import keras


def split_pair(x, style=None):
    """`(content, style)` from `model(content, style)` or a fit batch `x`.

    Args:
      x: the content batch (then `style` is given), a dict with `"content"`
        and `"style"`, or a `(content, style)` tuple or list.
      style: the style batch, or None when `x` holds both.

    Raises:
      ValueError: `x` holds no pair and `style` is missing.
    """
    if style is not None:
        return x, style
    if isinstance(x, dict) and "content" in x and "style" in x:
        return x["content"], x["style"]
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return x[0], x[1]
    raise ValueError(
        "Expected model(content, style), or one batch {'content': ..., 'style': ...} "
        f"or (content, style); got a {type(x).__name__} and no style."
    )


def scale_for_replicas(loss):
    """Divides by the replicas of a TensorFlow distribution strategy, as Keras' losses do.

    Under `tf.distribute` every replica's gradient is summed, so the loss a
    replica differentiates is its mean divided by the replica count (Keras'
    compiled losses do the same; its `loss` metric undoes it). JAX's data
    parallelism computes one global-batch loss and needs nothing.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf  # Only on the TensorFlow backend.

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return loss
    return loss * keras.ops.cast(1.0 / replicas, loss.dtype)


class ObjectiveMixin:
    """`compute_loss` for `fit` from a model's `loss_terms(outputs, content, style)`, and `build`.

    A subclass (a `keras.Model`) sets `LOSS_TERMS` (the names of the terms
    besides `"total"`), calls `_init_objective()` in `__init__`, and defines
    `loss_terms`, which returns a dict of scalars with those names and
    `"total"`. Keras' `loss` metric is the total; every other term gets a
    `keras.metrics.Mean` of the same name, tracked by the model (listed in
    `model.metrics`), reset by `fit` at each epoch like Keras' own metrics.
    """

    LOSS_TERMS = ()

    def _init_objective(self):
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in self.LOSS_TERMS]

    def loss_terms(self, outputs, content, style):
        raise NotImplementedError

    def build(self, content_shape=None, style_shape=None):
        """Builds a (content, style) model by calling it on a tiny pair.

        Tracing creates every variable with the shapes the layers infer,
        including those only the call path knows; the shapes are ignored
        (both models take any image size).
        """
        if self.built:
            return
        self.built = True
        image = keras.ops.zeros((1, 32, 32, 3))
        self(image, image)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of batch `x`; updates the per-term metrics.

        Args:
          x: the batch, `{"content": [B, H, W, 3], "style": [B, H2, W2, 3]}`
            or a `(content, style)` tuple.
          y, sample_weight: unused (the objective is self-supervised).
          y_pred: the model's outputs on `x`; computed here when None.
          training: passed to the model when it computes `y_pred`.

        Returns:
          Scalar float32 total, divided by the replica count under a
          TensorFlow distribution strategy (see `scale_for_replicas`).
        """
        del y, sample_weight
        content, style = split_pair(x)
        if y_pred is None:
            y_pred = self(content, style, training=training)
        content = keras.ops.cast(content, "float32")
        style = keras.ops.cast(style, "float32")
        terms = self.loss_terms(y_pred, content, style)
        for tracker in self.loss_trackers:
            tracker.update_state(terms[tracker.name])
        return scale_for_replicas(terms["total"])
