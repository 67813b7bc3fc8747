r"""Training speed: optimizer steps/s of efanet and AdaIN vs the input pipeline alone.

The model step is `train_lib.Trainer.train_step` (the step `train.py` runs:
forward, losses, gradients, Adam) on a fixed batch, so the number measures
the model and not the input. The pipeline is `data.make_pair_dataset` with
the builtin source and, if `--content_dir`/`--style_dir` are given, with
directory sources, iterated alone. The pipeline must deliver batches at
least 5x as fast as the slower model consumes them.

    python -m bench.train_step --content_dir=/path/to/content --style_dir=/path/to/style

Numbers are wall-clock on whatever else the machine is running; the JSON
report also has the process CPU seconds of each model step.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

import keras
import tensorflow as tf
from absl import app, flags, logging

from bench import common
from exchange_st import data as data_lib
from exchange_st import train_lib

MODELS = ("efanet", "adain")
TARGET_PIPELINE_OVER_MODEL = 5.0


@dataclasses.dataclass
class TrainBenchConfig:
    """What `run` measures.

    Attributes:
      crop_size: training crop side (256 in the paper).
      batch_size: pairs per step (4 as in the paper's setup here).
      models: which `train_lib.MODELS` to time.
      warmup_steps: untimed model steps (the first traces the step).
      steps: maximum timed model steps.
      budget_s: seconds after which no new timed model step starts.
      pipeline_batches: batches timed per pipeline (after `pipeline_warmup`).
      pipeline_warmup: untimed batches (file scan, autotuning, first reads).
      content_dir, style_dir: optional directory sources for the pipeline.
      resize_short_side: pipeline resize before the crop.
      vgg_weights: VGG weights (None = random; speed does not depend on them).
      device: TF device; "" = first GPU, else CPU.
      xla: compile the forward/backward pass with XLA.
      mixed_precision: "none", "mixed_float16" or "mixed_bfloat16".
      output: JSON report path.
      seed: seed of weights, inputs and pipeline.
    """

    crop_size: int = 256
    batch_size: int = 4
    models: tuple[str, ...] = MODELS
    warmup_steps: int = 1
    steps: int = 3
    budget_s: float = 120.0
    pipeline_batches: int = 50
    pipeline_warmup: int = 5
    content_dir: str = ""
    style_dir: str = ""
    resize_short_side: int = 512
    vgg_weights: str | None = None
    device: str = ""
    xla: bool = False
    mixed_precision: str = "none"
    output: str = "bench_out/train_step.json"
    seed: int = 0


def time_model_step(cfg: TrainBenchConfig, model: str, workdir: str) -> dict:
    """Steps/s of one model's training step on a fixed random batch."""
    data_cfg = data_lib.DataConfig(
        "builtin",
        "builtin",
        crop_size=cfg.crop_size,
        batch_size=cfg.batch_size,
        resize_short_side=max(cfg.crop_size, 64),
        seed=cfg.seed,
    )
    train_cfg = train_lib.TrainConfig(
        data=data_cfg,
        model_dir=f"{workdir}/{model}",
        model=model,
        vgg_weights=cfg.vgg_weights,
        seed=cfg.seed,
        mixed_precision=cfg.mixed_precision,
        jit_compile=cfg.xla,
    )
    trainer = train_lib.Trainer(train_cfg)
    shape = [cfg.batch_size, cfg.crop_size, cfg.crop_size, 3]
    batch = {
        "content": common.random_images(shape, cfg.seed + 1),
        "style": common.random_images(shape, cfg.seed + 2),
    }
    timing = common.time_interleaved(
        {model: lambda: trainer.train_step(batch)}, cfg.warmup_steps, cfg.steps, cfg.budget_s
    )[model]
    return dict(
        timing.to_dict(),
        steps_per_s=1.0 / timing.median,
        trainable_params=int(sum(v.shape.num_elements() for v in trainer.variables)),
    )


def time_pipeline(cfg: TrainBenchConfig, content_source: str, style_source: str) -> dict:
    """Batches/s of `make_pair_dataset` iterated alone."""
    data_cfg = data_lib.DataConfig(
        content_source,
        style_source,
        resize_short_side=cfg.resize_short_side,
        crop_size=cfg.crop_size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
    )
    t_build = time.perf_counter()
    iterator = iter(data_lib.make_pair_dataset(data_cfg))
    for _ in range(cfg.pipeline_warmup):
        next(iterator)
    t0 = time.perf_counter()
    for _ in range(cfg.pipeline_batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - t0
    assert batch["content"].shape == (cfg.batch_size, cfg.crop_size, cfg.crop_size, 3)
    return {
        "content_source": content_source,
        "style_source": style_source,
        "batches": cfg.pipeline_batches,
        "seconds": elapsed,
        "steps_per_s": cfg.pipeline_batches / elapsed,
        "startup_s": t0 - t_build,
    }


def run(cfg: TrainBenchConfig) -> dict:
    """Times the models and the pipelines; prints a table and the key ratio; writes JSON."""
    common.set_precision(cfg.mixed_precision)
    device = common.select_device(cfg.device)
    report = {"config": dataclasses.asdict(cfg), "environment": common.environment(device)}
    pipelines = {"builtin": ("builtin", "builtin")}
    if cfg.content_dir or cfg.style_dir:
        pipelines["directory"] = (
            cfg.content_dir or cfg.style_dir,
            cfg.style_dir or cfg.content_dir,
        )
    report["pipelines"] = {}
    for name, (c_src, s_src) in pipelines.items():
        logging.info("Timing the %s pipeline.", name)
        report["pipelines"][name] = time_pipeline(cfg, c_src, s_src)
    report["models"] = {}
    with tempfile.TemporaryDirectory() as workdir, tf.device(device):
        for model in cfg.models:
            logging.info("Timing the %s training step.", model)
            report["models"][model] = time_model_step(cfg, model, workdir)
            keras.backend.clear_session()
    rows = [
        [f"model {m}", r["median_s"], r["cpu_median_s"], r["steps_per_s"], len(r["times_s"])]
        for m, r in report["models"].items()
    ]
    rows += [
        [f"pipeline {p}", 1.0 / r["steps_per_s"], float("nan"), r["steps_per_s"], r["batches"]]
        for p, r in report["pipelines"].items()
    ]
    print(f"batch {cfg.batch_size} x {cfg.crop_size}x{cfg.crop_size}, device {device}")
    print(common.format_table(["what", "s/step", "CPU s/step", "steps/s", "n"], rows))
    lines = []
    report["ratios"] = {}
    for p, pipe in report["pipelines"].items():
        for m, step in report["models"].items():
            ratio = pipe["steps_per_s"] / step["steps_per_s"]
            report["ratios"][f"pipeline_{p}/{m}"] = ratio
            lines.append(
                f"KEY pipeline {p} / {m} training step: {ratio:.1f}x "
                f"(target >= {TARGET_PIPELINE_OVER_MODEL:g}x)"
            )
    common.write_json(cfg.output, report)
    print("\n".join(lines))
    return report


FLAGS = flags.FLAGS
flags.DEFINE_integer("crop_size", 256, "Training crop side.")
flags.DEFINE_integer("batch_size", 4, "Pairs per step.")
flags.DEFINE_list("models", list(MODELS), "Models to time (train_lib.MODELS keys).")
flags.DEFINE_integer("warmup_steps", 1, "Untimed model steps.")
flags.DEFINE_integer("steps", 3, "Maximum timed model steps.")
flags.DEFINE_float("budget_s", 120.0, "Seconds after which no new timed model step starts.")
flags.DEFINE_integer("pipeline_batches", 50, "Timed batches per pipeline.")
flags.DEFINE_integer("pipeline_warmup", 5, "Untimed batches per pipeline.")
flags.DEFINE_string("content_dir", "", "Directory of content images for the pipeline timing.")
flags.DEFINE_string("style_dir", "", "Directory of style images for the pipeline timing.")
flags.DEFINE_integer("resize_short_side", 512, "Pipeline resize of the short side before cropping.")
flags.DEFINE_string("vgg_weights", None, "VGG-19 notop h5 path; default random (same speed).")
flags.DEFINE_string("device", "", "TF device, e.g. /CPU:0 or /GPU:0; default GPU if present.")
flags.DEFINE_bool("xla", False, "Compile the forward/backward pass with XLA.")
flags.DEFINE_enum("mixed_precision", "none", list(common.PRECISIONS), "Keras dtype policy.")
flags.DEFINE_string("output", "bench_out/train_step.json", "JSON report path.")
flags.DEFINE_integer("seed", 0, "Seed of weights, inputs and pipeline.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cfg = TrainBenchConfig(
        crop_size=FLAGS.crop_size,
        batch_size=FLAGS.batch_size,
        models=tuple(FLAGS.models),
        warmup_steps=FLAGS.warmup_steps,
        steps=FLAGS.steps,
        budget_s=FLAGS.budget_s,
        pipeline_batches=FLAGS.pipeline_batches,
        pipeline_warmup=FLAGS.pipeline_warmup,
        content_dir=FLAGS.content_dir,
        style_dir=FLAGS.style_dir,
        resize_short_side=FLAGS.resize_short_side,
        vgg_weights=FLAGS.vgg_weights,
        device=FLAGS.device,
        xla=FLAGS.xla,
        mixed_precision=FLAGS.mixed_precision,
        output=FLAGS.output,
        seed=FLAGS.seed,
    )
    run(cfg)


if __name__ == "__main__":
    app.run(main)
