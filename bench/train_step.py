r"""Training speed of `model.fit` as train.py runs it: steps/s, pairs/s, TFLOP/s, MFU, input wait.

Runs on the TensorFlow and the JAX backend (`KERAS_BACKEND=jax`, no
TensorFlow needed).

Each variant (model x crop x batch x precision x
jit, then input x callbacks, which share the variant's compiled step) is a
`train_lib.Trainer` (train.py's model, optimizer and callbacks) whose
`model.fit` runs `--steps` steps per round; the variants take turns round
by round, so a drifting machine load hits them alike. A round's figure is
the time from the end of its first step to the end of its last, per step
(both ends waited for, so asynchronous dispatch cannot hide work).
`--input=fixed` feeds one random batch (the step alone), `pipeline` the
configured input (tf.data on TensorFlow, the `pydata.PairDataset` on JAX);
on JAX every step's wait for its batch is timed. `--callbacks=train` are
train.py's (its NaN guard reads every step's losses, so each step waits
for the previous one), `none` lets fit dispatch steps back to back. The
pipelines are also timed alone (batches/s).

FLOPs: `train_flops.training_step_flops`, the forward pass of `call` +
`compute_loss` times 3 for forward + backward (the usual model-FLOP
convention); the count of only the backward work actually needed (smaller:
the frozen VGG needs little) is printed next to it. MFU is TFLOP/s over
`--peak_tflops`.

    python -m bench.train_step --crop_sizes=256 --batch_sizes=4
    KERAS_BACKEND=jax python -m bench.train_step --precisions=none,mixed_bfloat16 \
        --batch_sizes=4 --input=fixed,pipeline --callbacks=train,none --data_workers=8

The load average is printed at the start and the end; each KEY line gives
the median over the rounds and their range. On a shared CPU compare the
process CPU seconds per step too (in the table and the JSON): other jobs
move the wall clock more.
"""

from __future__ import annotations

import dataclasses
import tempfile

import keras
from absl import app, flags, logging

from bench import common
from bench.train_inputs import time_pipelines
from bench.train_report import step_lines
from bench.train_variants import (
    DEFAULT_PEAK_TFLOPS,
    TrainBenchConfig,
    variants,
)
from bench.train_runners import FitRunner, build_runners, interleave, summarize_times, variant_input
from exchange_st import console
from exchange_st.data import sources
from exchange_st.evaluation import train_flops
from exchange_st.training import distribute


def step_flops(model, crop: int, batch: int) -> dict[str, int]:
    """FLOPs of one training step by each of `train_flops.STEP_CONVENTIONS`."""
    forward = train_flops.training_flops(model, [batch, crop, crop, 3])
    counts = {"forward": forward.total}
    for convention in train_flops.STEP_CONVENTIONS:
        counts[convention] = train_flops.training_step_flops(forward, convention)
    return counts


def throughput(seconds_per_step: float, batch: int, flops: dict, peak_tflops: float) -> dict:
    """Steps/s, pairs/s, TFLOP/s and MFU (per FLOP convention) of a step time.

    Args:
      seconds_per_step: measured time of one step.
      batch: content-style pairs per step.
      flops: `step_flops(...)`: FLOPs per step by convention.
      peak_tflops: the device's peak in TFLOP/s.
    """
    steps_per_s = 1.0 / seconds_per_step
    out = {"steps_per_s": steps_per_s, "pairs_per_s": batch * steps_per_s}
    for convention in train_flops.STEP_CONVENTIONS:
        tflops = flops[convention] * steps_per_s / 1e12
        out[f"tflops_per_s/{convention}"] = tflops
        out[f"mfu/{convention}"] = tflops / peak_tflops
    return out


def _profile(cfg: TrainBenchConfig, runner: FitRunner) -> dict:
    """Traces one call of a runner into `cfg.profile_dir`; op types by time on TensorFlow."""
    common.trace(cfg.profile_dir, runner.run)
    if common.backend() != "tensorflow":
        return {"dir": cfg.profile_dir}
    return {"dir": cfg.profile_dir, "ops": common.profile_op_summary(cfg.profile_dir)}


def run_steps(cfg: TrainBenchConfig, report: dict) -> dict:
    """Every variant's fit steps, pipelines alone, KEY lines."""
    all_variants = variants(cfg)
    report["pipelines"] = {}
    if cfg.pipeline_batches > 0:
        for crop in cfg.crop_sizes:
            for batch in cfg.batch_sizes:
                report["pipelines"][f"{crop}px b{batch}"] = time_pipelines(cfg, crop, batch)
    report["variants"] = {}
    with tempfile.TemporaryDirectory() as workdir, common.device_scope(report["device"]):

        def make_runners(v, trainer, meter):
            data = variant_input(cfg, v, trainer)
            return {v.name: FitRunner(trainer, data, cfg.steps, v.callbacks, meter)}

        runners, trainers = build_runners(cfg, all_variants, workdir, make_runners)
        flops = {
            key: step_flops(trainer.model, key.crop, key.batch) for key, trainer in trainers.items()
        }

        def record(results, r):
            for v in all_variants:
                res = results[v.name]
                f = flops[v.trainer_key]
                entry = dict(dataclasses.asdict(v), flops_per_step=f, rounds=r)
                entry["first_call_s"] = res["first_call_s"]
                if res["wall"]:
                    entry["wall"] = summarize_times(res["wall"])
                    entry["cpu"] = summarize_times(res["cpu"])
                    entry.update(throughput(entry["wall"]["median_s"], v.batch, f, cfg.peak_tflops))
                waits = runners[v.name].round_waits[1:]  # Round 0 is the warm-up.
                if waits:
                    entry["input_wait"] = summarize_times(waits)
                report["variants"][v.name] = entry
            report["environment"]["load_average_now"] = common.load_average()
            common.write_json(cfg.output, report)

        interleave(runners, cfg.rounds, record)
        if cfg.profile_dir:
            first = all_variants[0].name
            logging.info("Tracing %d steps of %s.", cfg.profile_steps, first)
            r = runners[first]
            short = FitRunner(r.trainer, r.dataset, cfg.profile_steps, r.callback_kind)
            report["profile"] = dict(_profile(cfg, short), variant=first, steps=cfg.profile_steps)
    return report


def run(cfg: TrainBenchConfig) -> dict:
    """Runs the variants, prints a table and the KEY lines, writes the JSON report."""
    load = common.print_load("start")
    device = common.select_device(cfg.device)
    report = {
        "config": dataclasses.asdict(cfg),
        "environment": dict(common.environment(device), load_average_start=load),
        "device": device,
    }
    previous_distribution = None
    if common.backend() == "jax":
        # As train_lib.train: data parallel over several local devices.
        previous_distribution = keras.distribution.distribution()
        distribution = distribute.make_distribution()
        if distribution is not None:
            keras.distribution.set_distribution(distribution)
    try:
        run_steps(cfg, report)
    finally:
        if common.backend() == "jax":
            keras.distribution.set_distribution(previous_distribution)
    print(f"backend {common.backend()}, device {device}, steps per round {cfg.steps}")
    rows = [
        [
            name,
            e["wall"]["median_s"],
            e["wall"]["min_s"],
            e["wall"]["max_s"],
            e["cpu"]["median_s"],
            e["steps_per_s"],
            e["pairs_per_s"],
            e["tflops_per_s/3x"],
            len(e["wall"]["times_s"]),
        ]
        for name, e in report["variants"].items()
    ]
    rows += [
        [
            f"pipeline {p} {key}",
            1.0 / r["steps_per_s"],
            float("nan"),
            float("nan"),
            float("nan"),
            r["steps_per_s"],
            float("nan"),
            float("nan"),
            r["batches"],
        ]
        for key, pipes in report["pipelines"].items()
        for p, r in pipes.items()
    ]
    header = ["what", "s/step", "min", "max", "CPU s/step", "steps/s", "pairs/s"]
    print(common.format_table([*header, "TFLOP/s", "n"], rows))
    if "profile" in report:
        print(f"profile of {report['profile']['variant']}: {report['profile']['dir']}")
        for op in report["profile"].get("ops", [])[:15]:
            print(f"  {op['op']:<32} {op['ms']:9.1f} ms  {100 * op['share']:5.1f}%")
    lines = step_lines(cfg, report)
    report["key_lines"] = lines
    report["environment"]["load_average_end"] = common.print_load("end")
    common.write_json(cfg.output, report)
    print("\n".join(lines))
    return report


FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["efanet"], "Models to time (train_config.MODELS keys).")
flags.DEFINE_list("crop_sizes", ["256"], "Training crop sides.")
flags.DEFINE_list("batch_sizes", ["4"], "Pairs per step.")
flags.DEFINE_list(
    "precisions", ["none"], "Keras dtype policies: none, mixed_float16, mixed_bfloat16."
)
flags.DEFINE_list("jit", ["auto"], "jit_compile: auto (train.py's: JAX on, TF off), on, off.")
flags.DEFINE_list(
    "input", ["fixed"], "fixed (one random batch) and/or pipeline (the configured input)."
)
flags.DEFINE_list("callbacks", ["train"], "train (train.py's callbacks) and/or none.")
flags.DEFINE_integer("steps", 5, "Steps per round and variant (the first is not timed).")
flags.DEFINE_integer("rounds", 3, "Timed rounds, after one untimed round that compiles.")
flags.DEFINE_string("content_dir", "", "Content image directory of the pipeline; default builtin.")
flags.DEFINE_string("style_dir", "", "Style image directory of the pipeline (default builtin).")
flags.DEFINE_integer("resize_short_side", 512, "Pipeline resize of the short side before cropping.")
flags.DEFINE_enum("data_pipeline", "auto", list(sources.PIPELINES), "tf, py, or auto (train.py's).")
flags.DEFINE_integer("data_workers", 1, "PyDataset pipeline: worker threads (or processes).")
flags.DEFINE_boolean("data_multiprocessing", False, "PyDataset pipeline: workers are processes.")
flags.DEFINE_integer("pipeline_batches", 50, "Batches of each pipeline timed alone (0: skip).")
flags.DEFINE_integer("pipeline_warmup", 5, "Untimed batches per pipeline.")
flags.DEFINE_string("vgg_weights", None, "VGG-19 notop h5 path; default random (same speed).")
flags.DEFINE_string("device", "", "TF device, e.g. /CPU:0 or /GPU:0; default GPU if present.")
flags.DEFINE_float("peak_tflops", DEFAULT_PEAK_TFLOPS, "Peak TFLOP/s that MFU is a fraction of.")
flags.DEFINE_string("profile_dir", "", "Trace the first variant's steps into this directory.")
flags.DEFINE_integer("profile_steps", 3, "Steps of the traced fit call (--profile_dir).")
flags.DEFINE_string("output", "bench_out/train_step.json", "JSON report path.")
flags.DEFINE_integer("seed", 0, "Seed of weights, inputs and pipeline.")
flags.DEFINE_multi_string(
    "option",
    [],
    "key=value applied to every variant's TrainConfig (train_config.with_options: a field, a "
    "loss field or a model constructor argument), e.g. --option=fusion_mode=adain.",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        cfg = TrainBenchConfig(
            models=tuple(FLAGS.models),
            crop_sizes=tuple(int(s) for s in FLAGS.crop_sizes),
            batch_sizes=tuple(int(s) for s in FLAGS.batch_sizes),
            precisions=tuple(FLAGS.precisions),
            jit=tuple(FLAGS.jit),
            inputs=tuple(FLAGS.input),
            callbacks=tuple(FLAGS.callbacks),
            steps=FLAGS.steps,
            rounds=FLAGS.rounds,
            content_dir=FLAGS.content_dir,
            style_dir=FLAGS.style_dir,
            resize_short_side=FLAGS.resize_short_side,
            data_pipeline=FLAGS.data_pipeline,
            data_workers=FLAGS.data_workers,
            data_multiprocessing=FLAGS.data_multiprocessing,
            pipeline_batches=FLAGS.pipeline_batches,
            pipeline_warmup=FLAGS.pipeline_warmup,
            vgg_weights=FLAGS.vgg_weights,
            device=FLAGS.device,
            peak_tflops=FLAGS.peak_tflops,
            profile_dir=FLAGS.profile_dir,
            profile_steps=FLAGS.profile_steps,
            output=FLAGS.output,
            seed=FLAGS.seed,
            options=console.parse_options(FLAGS.option),
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    run(cfg)


if __name__ == "__main__":
    app.run(main)
