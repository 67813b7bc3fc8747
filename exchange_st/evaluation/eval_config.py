"""What one evaluation runs (`EvalConfig`) and how its method specs read."""

from __future__ import annotations

import dataclasses

from exchange_st.baselines import gatys as gatys_lib

BUILTIN_METHODS = ("efanet", "adain", "gatys", "wct", "content")
# Rows of Table 1 that Table 2 does not time: `content` returns the content
# unchanged, the floor every method's style term must beat.
UNTIMED_METHODS = ("content",)


def split_spec(spec):
    if "=" in spec:
        name, path = spec.split("=", 1)
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise ValueError(f"ablation spec must be name=checkpoint_dir, got {spec!r}")
        return name, path
    return spec.strip(), None


def method_name(spec):
    """Display name of a method spec (`"adain"` -> `adain`, `"x=runs/x"` -> `x`)."""
    return split_spec(spec)[0]


@dataclasses.dataclass
class EvalConfig:
    """Everything one evaluation depends on; written into `results.json`.

    Attributes:
      content_dir, style_dir: directories of evaluation images (searched
        recursively).
      output_dir: where `results.json` and `comparison.png` go.
      methods: method specs, each `efanet`, `adain`, `gatys`, `wct`, `content`
        (the content image returned unchanged: Table 1's floor), or
        `name=checkpoint_dir` for an ablation of the exchange model trained
        with `train.py` (its `config.json` gives the architecture).
      efanet_checkpoint: training `model_dir` (or checkpoint prefix, or
        release directory) of the full model; with neither it nor
        `efanet_saved_model` nor `random_init`, the pretrained release.
      efanet_saved_model: alternatively, a SavedModel from
        `export_savedmodel.py` (its `serving_default` signature is used).
      adain_checkpoint: training `model_dir` (or prefix) of `--model=adain`;
        also provides WCT's decoder.
      vgg_weights: VGG-19 weights of the metric, of Gatys et al. and of
        randomly initialised models: `"imagenet"`, an h5 path or None.
      size: evaluation side: the short side is resized to `size`, then the
        centre `size x size` crop is taken (content and style alike).
      pairs: number of (content, style) pairs sampled with `seed` from all
        M x N; 0 evaluates all of them.
      seed: seed of the pair sampling.
      gatys_iterations: optimiser steps of [6] (500 in the paper).
      gatys_optimizer: `"adam"` or `"lbfgs"`.
      gatys_style_weight: style weight of [6]'s objective.
      gatys_lr: learning rate (None: `gatys.DEFAULT_ADAM_LR`).
      tables: which of the paper's tables to produce: 1 (perceptual loss over
        the pairs) and/or 2 (running time at `timing_sizes`).
      timing_sizes: square sizes of Table 2; empty skips timing.
      timing_runs: timed runs per size after one warm-up run; the median is
        reported.
      gatys_timing_iterations: iterations of the timed [6] run; the time of
        `gatys_iterations` iterations is extrapolated from it when smaller.
      grid_rows: pairs shown in `comparison.png`.
      random_init: allow efanet / adain (and wct) without a checkpoint,
        with untrained weights (tests and demos only).
      skip_unreadable: images that cannot be read are left out of the
        tables, named, and listed in `results.json` (`skipped`) and at the
        end; False refuses the folders, naming every such image.
    """

    content_dir: str
    style_dir: str
    output_dir: str
    methods: tuple[str, ...] = ("efanet", "adain", "gatys")
    efanet_checkpoint: str | None = None
    efanet_saved_model: str | None = None
    adain_checkpoint: str | None = None
    vgg_weights: str | None = "imagenet"
    size: int = 512
    pairs: int = 0
    seed: int = 0
    gatys_iterations: int = 500
    gatys_optimizer: str = "adam"
    gatys_style_weight: float = gatys_lib.DEFAULT_STYLE_WEIGHT
    gatys_lr: float | None = None
    tables: tuple[int, ...] = (1, 2)
    timing_sizes: tuple[int, ...] = (256, 512, 1024)
    timing_runs: int = 5
    gatys_timing_iterations: int = 20
    grid_rows: int = 6
    random_init: bool = False
    skip_unreadable: bool = True

    def __post_init__(self):
        self.methods = tuple(self.methods)
        self.timing_sizes = tuple(int(s) for s in self.timing_sizes)
        self.tables = tuple(sorted({int(t) for t in self.tables}))
        if not self.tables or not set(self.tables) <= {1, 2}:
            raise ValueError(f"tables must be 1, 2 or both, got {self.tables}")
        if 2 not in self.tables:
            self.timing_sizes = ()
        if not self.methods:
            raise ValueError("methods must name at least one method")
        names = [method_name(spec) for spec in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"method names must be unique, got {names}")
        for spec in self.methods:
            name, path = split_spec(spec)
            if path is None and name not in BUILTIN_METHODS:
                raise ValueError(
                    f"unknown method {spec!r}: use one of {', '.join(BUILTIN_METHODS)} or "
                    "name=checkpoint_dir for an ablation"
                )
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if self.pairs < 0:
            raise ValueError(f"pairs must be >= 0 (0 = all), got {self.pairs}")
        for field in ("gatys_iterations", "timing_runs", "gatys_timing_iterations"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.gatys_optimizer not in gatys_lib.OPTIMIZERS:
            raise ValueError(
                f"gatys_optimizer must be one of {gatys_lib.OPTIMIZERS}, got {self.gatys_optimizer!r}"
            )
        if any(s < 16 for s in self.timing_sizes):
            raise ValueError(f"timing sizes must be >= 16, got {self.timing_sizes}")
        if self.grid_rows < 0:
            raise ValueError(f"grid_rows must be >= 0, got {self.grid_rows}")


# ----------------------------------------------------------------------------
# Images.
# ----------------------------------------------------------------------------
