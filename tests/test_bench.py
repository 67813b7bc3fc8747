"""The benchmarks' arithmetic and imports, the op-group split, the learning check's run and the colour probe."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from bench import common
from bench import train_step as bench
from exchange_st.data import image_io
from exchange_st.evaluation import flops, train_flops
from exchange_st.nn import vgg
from exchange_st.nn.model import ExchangeStyleTransfer

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
    forward = train_flops.training_flops(model, [4, 64, 64, 3])
    assert counts["3x"] == 3 * forward.total
    assert counts["needed"] == train_flops.training_step_flops(forward, "needed")
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


def test_interleaved_timing_runs_min_rounds_whatever_the_budget():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    timings = common.time_interleaved(fns, warmup=0, repeats=5, budget_s=0.0, min_rounds=3)
    assert [len(timings[k].times) for k in "ab"] == [3, 3]
    assert calls == ["a", "b"] * 3  # round-robin, so per-round ratios pair up
    timings = common.time_interleaved(fns, warmup=0, repeats=2, budget_s=0.0, min_rounds=3)
    assert len(timings["a"].times) == 2  # repeats caps it


def test_verdict_says_when_the_spread_straddles_the_target():
    assert common.verdict(0.95, 1.05, 1.1) == "meets the target in every round"
    assert common.verdict(1.12, 1.3, 1.1) == "misses the target in every round"
    assert "inconclusive" in common.verdict(1.05, 1.15, 1.1)
    assert common.verdict(0.9, 0.99, 0.85, at_most=False) == "meets the target in every round"
    assert "inconclusive" in common.verdict(0.8, 0.9, 0.85, at_most=False)
    assert common.spread([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)


def test_op_groups_chain_to_the_stylization_and_split_its_flops():
    """The groups, run in order, are `stylize` cut at its seams: same image, same FLOPs."""
    from conftest import small_efanet

    from bench import op_groups

    model = small_efanet(spread=True, num_pre_fusion_blocks=1, num_post_fusion_blocks=1)
    content = common.random_images([1, 37, 50, 3], 1)  # odd sizes: padding and crop
    style = common.random_images([1, 48, 40, 3], 2)
    tensors = {"content": content, "style": style}
    for name, (fn, keys, out) in op_groups.group_functions(model).items():
        tensors[out] = fn(*(tensors[k] for k in keys))
    expected = keras.ops.convert_to_numpy(model.stylize(content, style))
    image = keras.ops.convert_to_numpy(tensors["image"])
    assert image.shape == (1, 37, 50, 3)
    assert expected.std() > 0.05  # not a clipped, flat image
    np.testing.assert_allclose(image, expected, atol=1e-5)
    counts = op_groups.group_flops(model, content.shape, style.shape)
    assert set(counts) == set(op_groups.GROUPS)
    assert min(counts.values()) > 0
    assert sum(counts.values()) == flops.count_flops(model, content.shape, style.shape).total


def test_op_group_profile_reports_every_group():
    from conftest import small_efanet

    from bench import op_groups

    model = small_efanet(num_post_fusion_blocks=1)
    content = common.random_images([1, 32, 32, 3], 1)
    result = op_groups.run_groups(model, content, content, warmup=1, repeats=3, budget_s=0.0)
    assert result["rounds"] == 3
    assert list(result["groups"]) == list(op_groups.GROUPS)
    groups = result["groups"]
    # Each group's FLOPs are its share of the stylization's count, and its rate
    # is its own GFLOP over its own median time, relative to the VGG group's.
    total = flops.count_flops(model, content.shape, content.shape).total
    assert sum(g["gflop"] for g in groups.values()) == pytest.approx(total / 1e9)
    assert result["gflop"] == pytest.approx(total / 1e9)
    for g in groups.values():
        assert g["flop_share"] == pytest.approx(g["gflop"] / result["gflop"])
        assert g["gflops_per_s"] == pytest.approx(g["gflop"] / g["median_s"])
        assert g["rate_vs_vgg"] == pytest.approx(g["gflops_per_s"] / groups["vgg"]["gflops_per_s"])
        assert g["min_s"] <= g["median_s"] <= g["max_s"]
    assert "whole stylization" in op_groups.format_groups(result, 32)


def test_slow_groups_are_those_with_a_share_of_the_time_below_the_rate():
    from bench import op_groups

    result = {
        "groups": {
            "slow": {"time_share": 0.5, "rate_vs_vgg": 0.5},
            "negligible": {"time_share": 0.005, "rate_vs_vgg": 0.1},
            "fast": {"time_share": 0.3, "rate_vs_vgg": 0.9},
            "at_threshold": {"time_share": 0.2, "rate_vs_vgg": 0.85},
        }
    }
    assert op_groups.slow_groups(result) == ["slow"]
    assert op_groups.slow_groups(result, min_time_share=0.001) == ["slow", "negligible"]
    assert op_groups.slow_groups(result, threshold=0.95) == ["slow", "fast", "at_threshold"]


def _run_bench(args):
    """`python -m <args>` in the repository; fails the test with its stderr unless it exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_learning_check_reports_each_step_and_draws_a_grid_row_per_report(tmp_path):
    """The check's own run: every model reported at steps 0, 2, 3 (the last `fit` epoch is cut
    short at --steps), a grid row per report, weights; then `bench.colour_probe` on them."""
    dirs = ("content_dir", "style_dir", "eval_content_dir", "eval_style_dir")
    for seed, name in enumerate(dirs):
        (tmp_path / name).mkdir()
        # Three evaluation styles: the per-style measures need three.
        for i, image in enumerate(common.random_array((3 if seed == 3 else 2, 40, 48, 3), seed)):
            image_io.save_image(tmp_path / name / f"{i}.png", image)
    encoder = vgg.VGGEncoder(vgg_weights=None)
    encoder.build()
    vgg.write_truncated_weights(encoder, tmp_path / "vgg.h5")
    efanet = "efanet:code_dim=16,num_exchange_blocks=1,num_pre_fusion_blocks=0"
    saved = tmp_path / "out" / "efanet_code_dim16_num_exchange_blocks1_num_pre_fusion_blocks0"
    # A third run starts from the weights the first saved (one objective after
    # another), with Eq. 5 alone for its first two steps.
    resumed = f"{efanet},com_weight=0,rec_only_steps=2,init_weights={saved}.weights.h5"
    _run_bench(
        ["bench.learning_check"]
        + [f"--{d}={tmp_path / d}" for d in dirs]
        + [
            f"--vgg_weights={tmp_path / 'vgg.h5'}",
            f"--models={efanet};adain;{resumed}",
            "--steps=3",
            "--report_every=2",
            "--crop_size=32",
            "--resize_short_side=32",
            "--batch_size=2",
            "--eval_size=32",
            "--eval_pairs=2",
            "--save_weights",
            f"--output_dir={tmp_path / 'out'}",
        ]
    )
    with open(tmp_path / "out" / "results.json") as f:
        results = json.load(f)["results"]
    assert [r["spec"] for r in results] == [efanet, "adain", resumed]
    first, _, then = (r["reports"] for r in results)
    # It starts where the saved check ended: same weights, same evaluation images.
    assert then[0]["eval"]["total"] == pytest.approx(first[-1]["eval"]["total"], rel=1e-5)
    assert then[0]["eval"]["total"] != pytest.approx(first[0]["eval"]["total"], rel=1e-5)
    # Steps 1-2 minimise Eq. 5 alone (its weight 5), step 3 all of Eq. 7.
    assert then[1]["train"]["total"] == pytest.approx(5 * then[1]["train"]["rec"], rel=1e-5)
    assert then[2]["train"]["total"] > 5 * then[2]["train"]["rec"] + 1e-3
    for r in results:
        assert [rep["step"] for rep in r["reports"]] == [0, 2, 3]
        for rep in r["reports"]:
            assert np.isfinite([rep["eval"]["total"], rep["eval"]["style_gain"]]).all()
            assert np.isfinite(rep["train"]["total"])
    assert "code_std" in results[0]["reports"][-1]["eval"]
    # Both models report the palette scores (their values: tests/test_learning_report.py).
    for r in results[:2]:
        last = r["reports"][-1]["eval"]
        assert {"colour_follow", "chroma_follow", "hue_headroom"} <= set(last)
    assert "v_r_spread" in results[0]["reports"][-1]["eval"]
    # Header (content over style), then s2c over c2c of both pairs per report.
    grid = image_io.load_image(results[0]["grid"])
    assert grid.shape == (2 + 4 * (64 + 2), 2 + 2 * (32 + 2), 3)
    assert os.path.exists(results[0]["grid"].replace(".png", ".weights.h5"))
    # The colour probe on the saved efanet (nine pairs: the fewest its three folds take).
    for seed, name in enumerate(("probe_content", "probe_style")):
        (tmp_path / name).mkdir()
        for i, image in enumerate(common.random_array((9, 32, 32, 3), 10 + seed)):
            image_io.save_image(tmp_path / name / f"{i}.png", image)
    proc = _run_bench(
        ["bench.colour_probe", f"--checkpoint={saved}.weights.h5"]
        + [f"--content_dir={tmp_path / 'probe_content'}", f"--style_dir={tmp_path / 'probe_style'}"]
        + ["--size=32", f"--json={tmp_path / 'probe.json'}"]
    )
    assert "9 pairs" in proc.stdout and "c2c paints its content" in proc.stdout
    with open(tmp_path / "probe.json") as f:
        probe = json.load(f)
    carriers = ("v_c_c", "v_r_c", "v_c_s", "v_r_s", "c2c", "s2c")
    assert set(probe["carried"]) == {f"{k}/{p}" for k in carriers for p in ("chroma", "grey")}
    assert all(np.isfinite(v) and v <= 1.0 for v in probe["carried"].values())
    assert set(probe["painted"]) == {"c2c/chroma", "c2c/grey", "s2c/chroma", "s2c/grey"}
