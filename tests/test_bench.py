"""The training benchmark's arithmetic, its fit-vs-loop premise (tiny network) and its imports."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from bench import common
from bench import train_step as bench
from exchange_st import flops, sources, train_lib
from exchange_st.model import ExchangeStyleTransfer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_ARCH = {
    "num_exchange_blocks": 1,
    "num_pre_fusion_blocks": 0,
    "num_post_fusion_blocks": 1,
    "code_dim": 16,
    "compressor_filters": (8, 8),
    "upsample_filters": (16, 8, 8),
}


def test_throughput_is_flops_py_over_the_step_time():
    model = ExchangeStyleTransfer(vgg_weights=None, **TINY_ARCH)
    counts = bench.step_flops(model, crop=64, batch=4)
    forward = flops.training_flops(model, [4, 64, 64, 3])
    assert counts["3x"] == 3 * forward.total
    assert counts["needed"] == flops.training_step_flops(forward, "needed")
    out = bench.throughput(0.25, 4, counts, peak_tflops=100.0)
    assert out["steps_per_s"] == pytest.approx(4.0)
    assert out["pairs_per_s"] == pytest.approx(16.0)
    assert out["tflops_per_s/3x"] == pytest.approx(4 * 3 * forward.total / 1e12)
    assert out["mfu/3x"] == pytest.approx(out["tflops_per_s/3x"] / 100.0)
    assert out["mfu/needed"] < out["mfu/3x"]


def test_inputs_and_callbacks_share_a_trainer():
    cfg = bench.TrainBenchConfig(
        precisions=("none", "mixed_bfloat16"),
        inputs=("fixed", "pipeline"),
        callbacks=("train", "none"),
    )
    variants = bench.variants(cfg)
    assert len(variants) == 8
    assert len({v.name for v in variants}) == 8
    # One compiled step per precision; inputs and callbacks reuse it.
    assert len({v.trainer_key for v in variants}) == 2
    with pytest.raises(ValueError, match="inputs"):
        bench.TrainBenchConfig(inputs=("disk",))


def _tiny_trainer(tmp_path, name):
    config = train_lib.TrainConfig(
        data=sources.DataConfig("builtin", "builtin", resize_short_side=32, crop_size=32),
        model_dir=str(tmp_path / name),
        vgg_weights=None,
        seed=0,
        warmup_steps=1,
        **TINY_ARCH,
    )
    return train_lib.Trainer(config)


def test_loop_runner_makes_the_same_updates_as_fit(tmp_path):
    """fit_vs_loop times the same computation both ways: equal weights after two steps."""
    batch = {
        "content": common.random_array([2, 32, 32, 3], 1),
        "style": common.random_array([2, 32, 32, 3], 2),
    }
    by_fit = _tiny_trainer(tmp_path, "fit")
    by_loop = _tiny_trainer(tmp_path, "loop")
    weights = lambda t: [keras.ops.convert_to_numpy(v) for v in t.model.trainable_variables]  # noqa: E731
    initial = weights(by_fit)
    for a, b in zip(initial, weights(by_loop)):
        np.testing.assert_array_equal(a, b)
    fit = bench.FitRunner(by_fit, bench.fixed_dataset(batch, "auto"), steps=2, callbacks="none")
    loop = bench.LoopRunner(by_loop, bench.fixed_dataset(batch, "auto"), steps=2)
    for runner in (fit, loop):
        wall, cpu = runner.run()
        assert wall > 0 and cpu > 0
    assert int(by_fit.model.optimizer.iterations) == int(by_loop.model.optimizer.iterations) == 2
    moved = 0
    for a, b, a0 in zip(weights(by_fit), weights(by_loop), initial):
        # The two steps differ by float rounding only, which Adam's
        # normalisation magnifies where a gradient element is near zero (up
        # to ~1e-3 of a kernel's update here); a different computation (a
        # missing term, another optimizer step) would differ by ~100%.
        if np.any(a != a0):
            moved += 1
            assert np.linalg.norm(a - b) <= 1e-2 * np.linalg.norm(a - a0), a.shape
    assert moved > len(initial) // 2


def test_benchmarks_import_without_tensorflow(tmp_path):
    """The GPU machines have JAX but no TensorFlow: the benchmarks must not import it."""
    pytest.importorskip("jax")
    shim = tmp_path / "no_tf"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['tensorflow'] = None\n")
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(shim), REPO]),
    )
    # One process per script: each defines its own absl flags.
    for script in ("train_step", "inference"):
        code = (
            f"from bench import common, {script}\n"
            "print(common.environment(common.select_device())['backend'])\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().endswith("jax")
