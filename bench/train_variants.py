"""What `bench.train_step` measures: its configuration and the variants it expands to."""

from __future__ import annotations

import dataclasses

from bench import common


MODELS = ("efanet", "adain")
INPUTS = ("fixed", "pipeline")
JIT_CHOICES = ("auto", "on", "off")
CALLBACKS = ("train", "none")
TARGET_PIPELINE_OVER_MODEL = 5.0
# Dense bf16 matrix rate of an H100 / H200: about 790 TFLOP/s measured for an
# 8192^3 bf16 matmul on an H200 (the datasheet says 989).
DEFAULT_PEAK_TFLOPS = 790.0


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
