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
