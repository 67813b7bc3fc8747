r"""Training speed of the recommended recipe on this CPU: precision, backend, XLA and threads.

Settings that need a process of their own (the Keras backend, TensorFlow's
thread pools) cannot share one `bench.train_step` run, so each variant is a
`bench.train_step` process of one timed round (its first round compiles and
is not timed), and the variants take turns round by round: a drifting load
hits them alike. Every variant trains `configs/recommended.cfg`'s model
(its Eq. 7 step, the one the preview spends its hours in) at batch 4 on a
fixed random batch. Also measured, in this process: the bare VGG-19
encoder's forward GFLOP/s at 256² batch 4 in each precision, the ceiling a
network made of the same convolutions can reach here; a training step's
GFLOP/s is given as a share of it (3 x forward FLOPs, `bench.train_step`'s
convention).

    python -m bench.cpu_training_speed --rounds=3 --output=bench_out/cpu_training_speed.json

Prints a table (median steps/s and pairs/s over the rounds with their range,
the ratio to TensorFlow float32 at the same crop, GFLOP/s, share of the VGG
ceiling) and writes it to the JSON. Pause other jobs (e.g. `kill -STOP` a
training run) while it runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 3, "Timed rounds per variant (one process each).")
flags.DEFINE_integer("steps", 4, "Steps per process round (the first is not timed).")
flags.DEFINE_list("variants", None, "Names of VARIANTS to run (default: all).")
flags.DEFINE_string("output", "bench_out/cpu_training_speed.json", "JSON report path.")

# The recipe's Eq. 7 step: configs/recommended.cfg's options that shape it.
RECIPE = (
    "fusion_mode=adain",
    "initialization=equalized",
    "exchange_targets=detached",
    "code_normalization=l2",
    "style_statistics=true",
)
# name -> (environment, bench.train_step flags).
VARIANTS = {
    "tf float32 128": ({}, ["--crop_sizes=128", "--precisions=none"]),
    "tf bf16 128": ({}, ["--crop_sizes=128", "--precisions=mixed_bfloat16"]),
    "tf bf16 128 xla": ({}, ["--crop_sizes=128", "--precisions=mixed_bfloat16", "--jit=on"]),
    "tf bf16 128 inter-op 1": (
        {"TF_NUM_INTEROP_THREADS": "1"},
        ["--crop_sizes=128", "--precisions=mixed_bfloat16"],
    ),
    "jax float32 128": ({"KERAS_BACKEND": "jax"}, ["--crop_sizes=128", "--precisions=none"]),
    "jax bf16 128": (
        {"KERAS_BACKEND": "jax"},
        ["--crop_sizes=128", "--precisions=mixed_bfloat16"],
    ),
    "tf float32 256": ({}, ["--crop_sizes=256", "--precisions=none"]),
    "tf bf16 256": ({}, ["--crop_sizes=256", "--precisions=mixed_bfloat16"]),
}


def run_variant(name: str, workdir: str, round_index: int) -> dict:
    env_extra, args = VARIANTS[name]
    output = os.path.join(workdir, f"{name.replace(' ', '_')}-{round_index}.json")
    command = [
        sys.executable,
        "-m",
        "bench.train_step",
        "--batch_sizes=4",
        f"--steps={FLAGS.steps}",
        "--rounds=1",
        "--pipeline_batches=0",
        f"--output={output}",
        *(f"--option={o}" for o in RECIPE),
        *args,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env_extra)
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    with open(output, encoding="utf-8") as f:
        report = json.load(f)
    (entry,) = report["variants"].values()
    return {
        "s_per_step": entry["wall"]["median_s"],
        "cpu_s_per_step": entry["cpu"]["median_s"],
        "flops_per_step_3x": entry["flops_per_step"]["3x"],
        "crop": entry["crop"],
        "precision": entry["precision"],
    }


def vgg_ceiling(precision: str) -> float:
    """GFLOP/s of the bare VGG-19 encoder's forward pass, 256² batch 4, TensorFlow."""
    import keras
    import numpy as np
    import tensorflow as tf

    from exchange_st.evaluation import flops as flops_lib
    from exchange_st.nn import vgg

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if precision == "none" else precision)
    try:
        encoder = vgg.VGGEncoder(vgg_weights=None)
        shape = (4, 256, 256, 3)
        x = tf.constant(np.random.default_rng(0).uniform(size=shape).astype("float32"))
        encoder(x)
        forward = tf.function(lambda t: encoder(t, output_all=False))
        forward(x).numpy()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            forward(x).numpy()
            times.append(time.perf_counter() - start)
        count = flops_lib.count_flops(encoder, shape, None).total
    finally:
        keras.config.set_dtype_policy(previous)
    return count / statistics.median(times) / 1e9


def main(argv):
    del argv
    names = FLAGS.variants or list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    results = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as workdir:
        for r in range(FLAGS.rounds):
            for name in names:
                results[name].append(run_variant(name, workdir, r))
                print(
                    f"round {r + 1}: {name}: {results[name][-1]['s_per_step']:.3f} s/step",
                    flush=True,
                )
    ceilings = {p: vgg_ceiling(p) for p in ("none", "mixed_bfloat16")}
    rows = {}
    for name, runs in results.items():
        rates = [1.0 / r["s_per_step"] for r in runs]
        first = runs[0]
        rate = statistics.median(rates)
        gflops = first["flops_per_step_3x"] * rate / 1e9
        rows[name] = {
            "steps_per_s": rate,
            "steps_per_s_range": [min(rates), max(rates)],
            "pairs_per_s": 4 * rate,
            "gflops_per_s_3x": gflops,
            "share_of_vgg_ceiling": gflops / ceilings[first["precision"]],
            "crop": first["crop"],
            "rounds": len(runs),
        }
    for name, row in rows.items():
        base = rows.get(f"tf float32 {row['crop']}")
        row["vs_tf_float32"] = row["steps_per_s"] / base["steps_per_s"] if base else None
    header = f"{'variant':<26}{'steps/s':>9}{'range':>15}{'pairs/s':>9}{'x f32':>7}{'GFLOP/s':>9}{'of VGG':>8}"
    print(header)
    for name, row in rows.items():
        low, high = row["steps_per_s_range"]
        ratio = f"{row['vs_tf_float32']:.2f}" if row["vs_tf_float32"] else "-"
        print(
            f"{name:<26}{row['steps_per_s']:>9.3f}{f'{low:.3f}-{high:.3f}':>15}"
            f"{row['pairs_per_s']:>9.2f}{ratio:>7}{row['gflops_per_s_3x']:>9.0f}"
            f"{100 * row['share_of_vgg_ceiling']:>7.0f}%"
        )
    print(
        "VGG-19 forward ceiling (256² batch 4, TensorFlow): "
        + ", ".join(f"{p}: {g:.0f} GFLOP/s" for p, g in ceilings.items())
    )
    end = os.getloadavg()
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(
            {
                "load_average_start": load,
                "load_average_end": end,
                "rounds": FLAGS.rounds,
                "steps": FLAGS.steps,
                "recipe": RECIPE,
                "vgg_ceiling_gflops": ceilings,
                "variants": rows,
                "per_round": results,
            },
            f,
            indent=2,
        )


if __name__ == "__main__":
    app.run(main)
