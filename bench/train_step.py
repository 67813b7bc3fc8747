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
import os
import statistics
import tempfile
import time

import keras
from absl import app, flags, logging

from bench import common
from exchange_st import console
from exchange_st.data import pydata, sources
from exchange_st.evaluation import train_flops
from exchange_st.training import distribute, train_config, train_lib

MODELS = ("efanet", "adain")
INPUTS = ("fixed", "pipeline")
JIT_CHOICES = ("auto", "on", "off")
CALLBACKS = ("train", "none")
TARGET_PIPELINE_OVER_MODEL = 5.0
# Dense bf16 matrix rate of an H100 / H200: about 790 TFLOP/s measured for an
# 8192^3 bf16 matmul on an H200 (the datasheet says 989).
DEFAULT_PEAK_TFLOPS = 790.0
# Checkpoints, summaries and image grids are not part of the step.
_NEVER = 10**9


@dataclasses.dataclass
class TrainBenchConfig:
    """What `run` measures.

    Attributes:
      models: `train_config.MODELS` keys.
      crop_sizes, batch_sizes: training crop sides and pairs per step.
      precisions: Keras dtype policies (`"none"` = float32).
      jit: `"auto"` (train.py's: XLA off on TensorFlow unless
        `--jit_compile`, always on on JAX), `"on"`, `"off"` (JAX: op by op).
      inputs: `"fixed"` (one random batch) and/or `"pipeline"`.
      callbacks: `"train"` (train.py's callbacks: the NaN guard reads every
        step's losses, so each step waits for the last) and/or `"none"`
        (fit dispatches steps back to back).
      steps: steps per round and variant (>= 2; the first is not timed).
      rounds: timed rounds (after one untimed round that compiles).
      content_dir, style_dir: directory sources of the pipeline (else
        `builtin`, procedural images).
      resize_short_side: pipeline resize before the crop.
      data_pipeline: `"auto"`, `"tf"` or `"py"` (`sources.PIPELINES`).
      data_workers, data_multiprocessing: PyDataset workers.
      pipeline_batches, pipeline_warmup: batches of each pipeline timed
        alone (0 = skip).
      vgg_weights: VGG weights (None = random; speed does not depend on them).
      device: TensorFlow device; "" = first GPU, else CPU.
      peak_tflops: the peak that MFU is a fraction of.
      profile_dir: if set, trace `profile_steps` steps of the first variant
        there (after the timed rounds).
      profile_steps: steps of the traced `fit` call.
      output: JSON report path (rewritten after every round).
      seed: seed of weights, inputs and pipeline.
      options: `train_config.with_options` of every variant's TrainConfig,
        e.g. the recommended recipe's `fusion_mode=adain` (its Eq. 7 step).
    """

    models: tuple[str, ...] = ("efanet",)
    crop_sizes: tuple[int, ...] = (256,)
    batch_sizes: tuple[int, ...] = (4,)
    precisions: tuple[str, ...] = ("none",)
    jit: tuple[str, ...] = ("auto",)
    inputs: tuple[str, ...] = ("fixed",)
    callbacks: tuple[str, ...] = ("train",)
    steps: int = 5
    rounds: int = 3
    content_dir: str = ""
    style_dir: str = ""
    resize_short_side: int = 512
    data_pipeline: str = "auto"
    data_workers: int = 1
    data_multiprocessing: bool = False
    pipeline_batches: int = 50
    pipeline_warmup: int = 5
    vgg_weights: str | None = None
    device: str = ""
    peak_tflops: float = DEFAULT_PEAK_TFLOPS
    profile_dir: str = ""
    profile_steps: int = 3
    output: str = "bench_out/train_step.json"
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if min(self.steps, self.profile_steps) < 2:
            raise ValueError("steps and profile_steps must be >= 2 (the first step is not timed)")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        for name, allowed in (
            ("models", MODELS),
            ("precisions", common.PRECISIONS),
            ("jit", JIT_CHOICES),
            ("inputs", INPUTS),
        ):
            bad = [v for v in getattr(self, name) if v not in allowed]
            if bad:
                raise ValueError(f"{name}: {bad} not in {allowed}")
        bad = [c for c in self.callbacks if c not in CALLBACKS]
        if bad or not self.callbacks:
            raise ValueError(f"callbacks: {bad or 'none given'}, choose from {CALLBACKS}")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One timed training configuration."""

    model: str
    crop: int
    batch: int
    precision: str
    jit: bool
    input: str = ""
    callbacks: str = ""

    @property
    def name(self) -> str:
        precision = "float32" if self.precision == "none" else self.precision
        jit = "jit" if self.jit else "nojit"
        name = f"{self.model} {self.crop}px b{self.batch} {precision} {jit}"
        if self.input:
            name += f" {self.input}"
        if self.callbacks:
            name += " train-callbacks" if self.callbacks == "train" else " no-callbacks"
        return name

    @property
    def trainer_key(self) -> Variant:
        """What needs a Trainer of its own: inputs and callbacks share the compiled step."""
        return dataclasses.replace(self, input="", callbacks="")


def resolve_jit(choice: str) -> bool:
    """`--jit` choice -> jit_compile, `"auto"` being train.py's default on this backend."""
    if choice == "auto":
        return common.backend() == "jax"
    return choice == "on"


def variants(cfg: TrainBenchConfig) -> list[Variant]:
    out = []
    for model in cfg.models:
        for crop in cfg.crop_sizes:
            for batch in cfg.batch_sizes:
                for precision in cfg.precisions:
                    for jit in dict.fromkeys(resolve_jit(j) for j in cfg.jit):
                        for input_ in cfg.inputs:
                            for callbacks in cfg.callbacks:
                                v = Variant(model, crop, batch, precision, jit, input_, callbacks)
                                out.append(v)
    return out


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


# ----------------------------------------------------------------------------
# Inputs.
# ----------------------------------------------------------------------------


class FixedBatch(keras.utils.PyDataset):
    """The same batch forever: the training step without the cost of making inputs."""

    def __init__(self, batch: dict):
        super().__init__()
        self.batch = batch

    @property
    def num_batches(self):
        return None

    def __getitem__(self, index):
        return self.batch


def _uses_tf_data(pipeline: str) -> bool:
    return pipeline == "tf" or (pipeline == "auto" and common.backend() == "tensorflow")


def fixed_dataset(batch: dict, pipeline: str):
    """`batch` repeated, in the kind of input the configured pipeline gives `fit`.

    A tf.data input gets the in-graph value checks train.py adds to it.
    """
    if _uses_tf_data(pipeline):
        import tensorflow as tf

        from exchange_st.saving import tf_checks

        return tf_checks.check_pair_dataset(tf.data.Dataset.from_tensors(batch).repeat())
    return FixedBatch(batch)


def data_config(cfg: TrainBenchConfig, crop: int, batch: int) -> sources.DataConfig:
    content = cfg.content_dir or cfg.style_dir or "builtin"
    style = cfg.style_dir or cfg.content_dir or "builtin"
    return sources.DataConfig(
        content,
        style,
        resize_short_side=max(cfg.resize_short_side, crop),
        crop_size=crop,
        batch_size=batch,
        seed=cfg.seed,
        pipeline=cfg.data_pipeline,
        workers=cfg.data_workers,
        use_multiprocessing=cfg.data_multiprocessing,
    )


def time_tf_data(cfg: TrainBenchConfig, data_cfg: sources.DataConfig) -> dict:
    """Batches/s of `data.make_pair_dataset` iterated alone."""
    from exchange_st.data import pipeline as data_lib  # TensorFlow.

    t_build = time.perf_counter()
    iterator = iter(data_lib.make_pair_dataset(data_cfg))
    for _ in range(cfg.pipeline_warmup):
        next(iterator)
    t0 = time.perf_counter()
    for _ in range(cfg.pipeline_batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - t0
    crop = data_cfg.crop_size
    assert tuple(batch["content"].shape) == (data_cfg.batch_size, crop, crop, 3)
    return {"batches": cfg.pipeline_batches, "seconds": elapsed, "startup_s": t0 - t_build}


def time_pydataset(cfg: TrainBenchConfig, data_cfg: sources.DataConfig) -> dict:
    """Batches/s of `pydata.PairDataset` made in one thread (fit's `workers` run several)."""
    t_build = time.perf_counter()
    dataset = pydata.PairDataset(data_cfg)
    for i in range(cfg.pipeline_warmup):
        dataset[i]
    t0 = time.perf_counter()
    for i in range(cfg.pipeline_batches):
        batch = dataset[cfg.pipeline_warmup + i]
    elapsed = time.perf_counter() - t0
    crop = data_cfg.crop_size
    assert batch["content"].shape == (data_cfg.batch_size, crop, crop, 3)
    return {"batches": cfg.pipeline_batches, "seconds": elapsed, "startup_s": t0 - t_build}


def time_pipelines(cfg: TrainBenchConfig, crop: int, batch: int) -> dict:
    """Each input path of this backend, alone: tf.data (TensorFlow) and the PyDataset."""
    data_cfg = data_config(cfg, crop, batch)
    timers = {"pydataset": time_pydataset}
    if common.backend() == "tensorflow":
        timers = {"tf.data": time_tf_data, **timers}
    results = {}
    for name, timer in timers.items():
        logging.info("Timing the %s pipeline alone (%s, %s).", name, data_cfg.content_source, crop)
        result = timer(cfg, data_cfg)
        result.update(
            content_source=data_cfg.content_source,
            style_source=data_cfg.style_source,
            steps_per_s=result["batches"] / result["seconds"],
        )
        results[name] = result
    return results


# ----------------------------------------------------------------------------
# Runners: each `run()` trains `steps` steps and returns (wall s, CPU s) per step.
# ----------------------------------------------------------------------------


class _Clock(keras.callbacks.Callback):
    """Times fit's steps after the first: from the end of step 1 to the end of training.

    Both ends wait for the device, so dispatch running ahead cannot hide
    work. Per-step hooks use `self._model`: on JAX `self.model` would write
    the training state back into the variables (a copy per step).
    """

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            common.materialize(logs)
            self.first = time.perf_counter(), time.process_time()

    def on_train_end(self, logs=None):
        # fit has written the last step's state back into the variables.
        common.materialize(self._model.optimizer.iterations.value)
        self.end = time.perf_counter(), time.process_time()


class WaitMeter:
    """Records how long each JAX training step blocks on `next(iterator)`, i.e. waits for data.

    Keras' JAX loop fetches the batch, then dispatches the compiled step;
    the model's `train_function` is wrapped to time the fetch alone.
    """

    def __init__(self, model):
        if model.steps_per_execution != 1:
            # Each call then fetches several batches; only the first would be timed.
            raise ValueError("WaitMeter needs steps_per_execution=1 (train.py's)")
        self.waits: list[float] = []
        model.make_train_function()
        inner = model.train_function

        def timed(state, iterator):
            t0 = time.perf_counter()
            data = next(iterator)
            self.waits.append(time.perf_counter() - t0)
            return inner(state, iter((data,)))

        model.train_function = timed


class FitRunner:
    """`model.fit` of one Trainer on one input for `steps` steps per call.

    Args:
      trainer: the `train_lib.Trainer`.
      dataset: what `fit` reads.
      steps: steps per call.
      callbacks: `"train"` (train.py's, `Trainer.callbacks`) or `"none"`.
      wait_meter: the trainer's `WaitMeter` (JAX), or None.
    """

    def __init__(self, trainer, dataset, steps: int, callbacks: str, wait_meter=None):
        self.trainer, self.dataset, self.steps = trainer, dataset, steps
        self.callback_kind = callbacks
        self.callbacks = trainer.callbacks(0, time.monotonic()) if callbacks == "train" else []
        self.wait_meter = wait_meter
        self.round_waits: list[float] = []

    def run(self) -> tuple[float, float]:
        clock = _Clock()
        first_wait = len(self.wait_meter.waits) if self.wait_meter else 0
        self.trainer.model.fit(
            self.dataset,
            steps_per_epoch=self.steps,
            epochs=1,
            callbacks=[*self.callbacks, clock],
            verbose=0,
            shuffle=False,
        )
        if self.wait_meter:
            # The first fetch of a call starts the iterator (and its workers).
            waits = self.wait_meter.waits[first_wait + 1 :]
            self.round_waits.append(sum(waits) / len(waits))
        n = self.steps - 1
        return (clock.end[0] - clock.first[0]) / n, (clock.end[1] - clock.first[1]) / n


# ----------------------------------------------------------------------------
# The run.
# ----------------------------------------------------------------------------


def build_trainer(cfg: TrainBenchConfig, v: Variant, workdir: str) -> train_lib.Trainer:
    """The Trainer of train.py for a variant (its input is chosen by `variant_input`)."""
    data_cfg = data_config(cfg, v.crop, v.batch)
    train_cfg = train_config.TrainConfig(
        data=data_cfg,
        model_dir=os.path.join(workdir, v.name.replace(" ", "_")),
        model=v.model,
        vgg_weights=cfg.vgg_weights,
        seed=cfg.seed,
        mixed_precision=v.precision,
        jit_compile=v.jit,
        steps=_NEVER,
        log_every=_NEVER,
        summary_every=_NEVER,
        image_every=_NEVER,
        checkpoint_every=_NEVER,
    )
    train_cfg = train_config.with_options(train_cfg, cfg.options)
    # As train_lib.train: the policy is read when the model is built.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if v.precision == "none" else v.precision)
    try:
        trainer = train_lib.Trainer(train_cfg)
    finally:
        keras.config.set_dtype_policy(previous)
    trainer.write_config()  # Creates model_dir, where the callbacks write (as Trainer.run).
    if common.backend() == "jax" and not v.jit:
        # The Trainer always compiles JAX steps; "off" measures what that buys.
        trainer.model.jit_compile = False
    return trainer


def variant_input(cfg: TrainBenchConfig, v: Variant, trainer):
    """`fixed`: one random batch repeated; `pipeline`: the Trainer's configured input."""
    if v.input == "pipeline":
        return trainer.dataset()
    shape = [v.batch, v.crop, v.crop, 3]
    batch = {
        "content": common.random_array(shape, cfg.seed + 1),
        "style": common.random_array(shape, cfg.seed + 2),
    }
    return fixed_dataset(batch, cfg.data_pipeline)


def build_runners(cfg: TrainBenchConfig, all_variants, workdir: str, make_runners):
    """One Trainer per variant but its input (inputs share the model and its compiled step).

    `make_runners(variant, trainer, wait_meter) -> {name: runner}`.
    """
    trainers, runners = {}, {}
    for v in all_variants:
        key = v.trainer_key
        if key not in trainers:
            logging.info("Building %s.", key.name)
            trainer = build_trainer(cfg, v, workdir)
            meter = WaitMeter(trainer.model) if common.backend() == "jax" else None
            trainers[key] = trainer, meter
        runners.update(make_runners(v, *trainers[key]))
    return runners, {k: t for k, (t, _) in trainers.items()}


def _summary(times: list[float]) -> dict:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
    }


def interleave(runners: dict, rounds: int, on_round=None) -> dict:
    """One untimed round (compiles), then `rounds` rounds in which every runner runs once.

    Returns `{name: {"wall": [...], "cpu": [...], "first_call_s": s}}`: per-step
    seconds of each timed round, and the whole first call (compilation included).
    """
    results = {name: {"wall": [], "cpu": []} for name in runners}
    for r in range(rounds + 1):
        for name, runner in runners.items():
            logging.info("Round %d/%d: %s", r, rounds, name)
            t0 = time.perf_counter()
            wall, cpu = runner.run()
            if r:
                results[name]["wall"].append(wall)
                results[name]["cpu"].append(cpu)
            else:
                results[name]["first_call_s"] = time.perf_counter() - t0
        if on_round is not None:
            on_round(results, r)
    return results


def _profile(cfg: TrainBenchConfig, runner: FitRunner) -> dict:
    """Traces one call of a runner into `cfg.profile_dir`; op types by time on TensorFlow."""
    common.trace(cfg.profile_dir, runner.run)
    if common.backend() != "tensorflow":
        return {"dir": cfg.profile_dir}
    return {"dir": cfg.profile_dir, "ops": common.profile_op_summary(cfg.profile_dir)}


def _fmt_range(times: list[float]) -> str:
    return f"{1 / max(times):.3g}-{1 / min(times):.3g}"


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
                    entry["wall"] = _summary(res["wall"])
                    entry["cpu"] = _summary(res["cpu"])
                    entry.update(throughput(entry["wall"]["median_s"], v.batch, f, cfg.peak_tflops))
                waits = runners[v.name].round_waits[1:]  # Round 0 is the warm-up.
                if waits:
                    entry["input_wait"] = _summary(waits)
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


def step_lines(cfg: TrainBenchConfig, report: dict) -> list[str]:
    """The KEY lines of the run."""
    lines = []
    entries = report["variants"]
    for name, e in entries.items():
        f = e["flops_per_step"]
        lines.append(
            f"KEY train {name}: {e['steps_per_s']:.3g} steps/s (median of "
            f"{len(e['wall']['times_s'])} rounds, range {_fmt_range(e['wall']['times_s'])}), "
            f"{e['pairs_per_s']:.3g} pairs/s, {e['tflops_per_s/3x']:.3g} TFLOP/s = "
            f"{100 * e['mfu/3x']:.3g}% MFU of {cfg.peak_tflops:g} TFLOP/s "
            f"(step = 3 x forward = {f['3x'] / 1e12:.3g} TFLOP; backward only where needed: "
            f"{f['needed'] / 1e12:.3g} TFLOP, {100 * e['mfu/needed']:.3g}%)"
        )
    for name, e in entries.items():
        if e["input"] != "pipeline":
            continue
        v = Variant(**{f.name: e[f.name] for f in dataclasses.fields(Variant)})
        fixed = entries.get(dataclasses.replace(v, input="fixed").name)
        parts = []
        if "input_wait" in e:
            wait = e["input_wait"]["median_s"]
            step = e["wall"]["median_s"]
            parts.append(
                f"waits {1e3 * wait:.3g} ms of its {1e3 * step:.3g} ms step for data "
                f"({100 * wait / step:.1f}%; median of {len(e['input_wait']['times_s'])} rounds)"
            )
            if fixed and "input_wait" in fixed:
                parts.append(f"fixed batch {1e3 * fixed['input_wait']['median_s']:.3g} ms")
        if fixed:
            extra = e["wall"]["median_s"] - fixed["wall"]["median_s"]
            parts.append(f"pipeline step - fixed-batch step = {1e3 * extra:+.3g} ms")
        if parts:
            lines.append(f"KEY input {name}: " + "; ".join(parts))
    for name, e in entries.items():
        if e["callbacks"] != "none":
            continue
        v = Variant(**{f.name: e[f.name] for f in dataclasses.fields(Variant)})
        synced = entries.get(dataclasses.replace(v, callbacks="train").name)
        if synced:
            a, b = synced["wall"]["median_s"], e["wall"]["median_s"]
            lines.append(
                f"KEY callbacks {dataclasses.replace(v, callbacks='').name}: train.py's callbacks "
                f"(losses read every step) {1e3 * a:.3g} ms/step, none {1e3 * b:.3g} ms/step "
                f"({1e3 * (a - b):+.3g} ms)"
            )
    # The pipelines against the step alone (the fixed-batch variants, if any).
    steps = {n: e for n, e in entries.items() if e["input"] == "fixed"} or entries
    for key, pipes in report.get("pipelines", {}).items():
        for pname, pipe in pipes.items():
            for name, e in steps.items():
                if f"{e['crop']}px b{e['batch']}" != key:
                    continue
                ratio = pipe["steps_per_s"] / e["steps_per_s"]
                lines.append(
                    f"KEY pipeline {pname} alone / {name} training step: {ratio:.1f}x "
                    f"(target >= {TARGET_PIPELINE_OVER_MODEL:g}x)"
                )
    return lines


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
