"""The optimizer of Sec. 3.5 and its warm-up."""

import keras
import numpy as np
import pytest

from exchange_st.training import optim


def test_warmup_ramps_linearly_then_holds():
    schedule = optim.LinearWarmup(1e-4, warmup_steps=4)
    got = [float(schedule(step)) for step in range(6)]
    np.testing.assert_allclose(got, [2.5e-5, 5e-5, 7.5e-5, 1e-4, 1e-4, 1e-4], rtol=1e-6)


def test_no_warmup_is_the_papers_constant_rate():
    schedule = optim.LinearWarmup(1e-4, warmup_steps=0)
    assert float(schedule(0)) == pytest.approx(1e-4)


def test_optimizer_is_adam_with_default_betas_and_serialises():
    opt = optim.make_optimizer(1e-4, 10)
    assert isinstance(opt, keras.optimizers.Adam)
    assert opt.beta_1 == 0.9 and opt.beta_2 == 0.999
    clone = keras.optimizers.Adam.from_config(opt.get_config())
    assert float(clone.learning_rate) == pytest.approx(1e-5)  # iteration 0 of 10


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="lr"):
        optim.LinearWarmup(0.0, 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.LinearWarmup(1e-4, -1)


@pytest.mark.parametrize("loss_scale", [False, True])
def test_restart_makes_the_next_update_a_fresh_optimizers(loss_scale):
    """After restart, the update equals a fresh Adam's (warm-up included); a loss scale stays."""

    def opt():
        o = optim.make_optimizer(1e-2, warmup_steps=4)
        return keras.optimizers.LossScaleOptimizer(o) if loss_scale else o

    used, fresh = keras.Variable([1.0, -2.0]), keras.Variable([1.0, -2.0])
    a, b = opt(), opt()
    for gradient in ([0.01, 0.02], [0.03, -0.01], [0.02, 0.02]):
        a.apply_gradients([(keras.ops.convert_to_tensor(gradient), used)])
    scale = [float(v) for v in a.variables if v.path.endswith("dynamic_scale")]
    used.assign([1.0, -2.0])
    optim.restart(a)
    big = keras.ops.convert_to_tensor([5.0, -3.0])
    a.apply_gradients([(big, used)])
    b.apply_gradients([(big, fresh)])
    np.testing.assert_allclose(used.numpy(), fresh.numpy(), rtol=1e-6)
    assert [float(v) for v in a.variables if v.path.endswith("dynamic_scale")] == scale
