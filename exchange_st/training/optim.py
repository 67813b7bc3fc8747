"""The optimizer of Sec. 3.5 (Adam, lr 1e-4, default decay rates) with a linear warm-up."""

import keras

# Steps over which the learning rate ramps linearly from lr / warmup_steps to
# lr. Adam's first updates move every weight by about lr whatever its
# gradient; in the 512-channel, normalisation-free decoders that first step
# scaled the output by 8x and the Gram loss by 1e4
# (docs/experiments/trainability.md). The paper names no schedule; the ramp is short next to
# its 350k steps.
DEFAULT_WARMUP_STEPS = 100


@keras.saving.register_keras_serializable(package="exchange_st")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * min(1, (step + 1) / warmup_steps)`; constant `lr` after the ramp.

    Args:
      lr: the learning rate after the warm-up (1e-4 in the paper).
      warmup_steps: length of the ramp; 0 or 1 gives a constant `lr`.
    """

    def __init__(self, lr, warmup_steps):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.lr = float(lr)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        ramp = (keras.ops.cast(step, "float32") + 1.0) / max(self.warmup_steps, 1)
        return self.lr * keras.ops.minimum(1.0, ramp)

    def get_config(self):
        return {"lr": self.lr, "warmup_steps": self.warmup_steps}


def make_optimizer(lr=1e-4, warmup_steps=DEFAULT_WARMUP_STEPS):
    """Adam with the paper's learning rate and default decay rates (Sec. 3.5)."""
    return keras.optimizers.Adam(learning_rate=LinearWarmup(lr, warmup_steps))


def restart(optimizer):
    """Zeroes Adam's moments and step count: its next update is a fresh optimizer's.

    For a change of objective (`rec_only_steps`: Eq. 5 alone, then Eq. 7).
    Adam carried across it divides Eq. 7's gradients, 10-100x larger than
    Eq. 5's, by second moments of Eq. 5's: every weight then moves by
    several times `lr` per step for hundreds of steps. The warm-up runs
    again. A float16 loss scale is kept.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    for variable in inner.variables:
        if not variable.path.endswith("learning_rate"):
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


def set_peak_lr(optimizer, lr):
    """Sets the rate the warm-up ramps to (`LinearWarmup.lr`), keeping its length.

    For a phase of training with its own rate (`TrainConfig.eq7_lr`). The
    train step must be retraced to use it (`train_lib.begin_phase` does).
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = inner._learning_rate  # noqa: SLF001 - the schedule itself, not its value.
    if not isinstance(schedule, LinearWarmup):
        raise TypeError(
            f"set_peak_lr needs a LinearWarmup schedule, found {type(schedule).__name__}"
        )
    if schedule.lr != float(lr):
        inner.learning_rate = LinearWarmup(lr, schedule.warmup_steps)
