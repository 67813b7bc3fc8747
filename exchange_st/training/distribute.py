"""Where a training run's steps run: `tf.distribute` strategies or Keras' JAX distribution."""

import os

import keras


def make_strategy():
    """TensorFlow: multi-worker if `TF_CONFIG` is set, mirrored over >1 GPU, else default."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def make_distribution():
    """JAX (and other non-TF backends): `DataParallel` over all local devices when >1, else None."""
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        return keras.distribution.DataParallel(devices=devices)
    return None


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files (the chief, or worker 0 without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
