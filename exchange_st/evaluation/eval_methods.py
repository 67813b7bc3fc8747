"""The methods of the benchmark (Tables 1 and 2): specs, building each method's network, timing one."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

import tensorflow as tf
from absl import logging

from exchange_st.baselines import gatys as gatys_lib
from exchange_st.baselines import wct as wct_lib
from exchange_st.evaluation.eval_config import EvalConfig, split_spec
from exchange_st.nn.model import ExchangeStyleTransfer
from exchange_st.baselines.adain import AdaINNet
from exchange_st.saving import checkpoints, loader, release


@dataclasses.dataclass
class Method:
    """One row of the tables.

    Attributes:
      name: display name.
      stylize: `(content [1, H, W, 3], style [1, H2, W2, 3]) -> [1, H, W, 3]`
        in [0, 1].
      time_fn: only for optimisation methods: `(content, style,
        iterations=None) -> int` runs what Table 2 times (the timing
        iteration count by default) and returns the iterations it ran.
        Feed-forward methods leave it None and `stylize` is timed.
      status: `"ok"` or `"failed"`.
      error: one-line reason of a failure.
      source: where the weights came from (checkpoint, random init, ...).
    """

    name: str
    stylize: Callable | None = None
    time_fn: Callable | None = None
    status: str = "ok"
    error: str | None = None
    source: str = ""

    def fail(self, error):
        self.status = "failed"
        self.error = one_line(error)
        logging.error("Method %s FAILED: %s", self.name, self.error)


def one_line(error):
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return " ".join(text.split())


def _feed_forward(stylize_fn):
    # Compiled like a deployed model (one graph per input size, traced in
    # the warm-up), so Table 2 does not time Python-level eager dispatch.
    return tf.function(stylize_fn, reduce_retracing=True)


class _Models:
    """Builds the networks of the methods; AdaIN's is built once and shared with WCT."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self._adain = None

    def adain(self):
        if self._adain is None:
            cfg = self.cfg
            if cfg.adain_checkpoint:
                model = loader.load(cfg.adain_checkpoint, what="adain", expect=AdaINNet)
                self._adain = (model, cfg.adain_checkpoint)
            elif cfg.random_init:
                model = checkpoints.untrained_model("adain", cfg.vgg_weights)
                self._adain = (model, "random init")
            else:
                # Neither: the pretrained AdaIN release, trained like the EFANet one.
                model = loader.load(
                    what="adain",
                    expect=AdaINNet,
                    instead="--adain_checkpoint (a train.py --model=adain model_dir), or "
                    "--random_init for an untrained demo",
                )
                self._adain = (model, f"pretrained release {release.default_path('adain')}")
        return self._adain

    def efanet(self):
        cfg = self.cfg
        if cfg.efanet_saved_model:
            return _saved_model_stylize(cfg.efanet_saved_model), cfg.efanet_saved_model
        if cfg.efanet_checkpoint:
            model = loader.load(cfg.efanet_checkpoint, what="efanet", expect=ExchangeStyleTransfer)
            return _feed_forward(model.stylize), cfg.efanet_checkpoint
        if cfg.random_init:
            model = checkpoints.untrained_model("efanet", cfg.vgg_weights)
            return _feed_forward(model.stylize), "random init"
        # Neither: the pretrained release.
        model = loader.load(
            instead="--efanet_checkpoint (a train.py model_dir) or --efanet_saved_model, or "
            "--random_init for an untrained demo"
        )
        return _feed_forward(model.stylize), f"pretrained release {release.default_path()}"


def _saved_model_stylize(path):
    loaded = loader.load_saved_model(path, "--efanet_saved_model")
    serve = loaded.signatures["serving_default"]

    def stylize(content, style):
        return serve(content=content, style=style, alpha=tf.constant(1.0))["stylized"]

    return stylize


def build_methods(cfg: EvalConfig, encoder) -> list[Method]:
    """One `Method` per spec; a method that cannot be built is marked failed."""
    models = _Models(cfg)
    result = []
    for spec in cfg.methods:
        name, path = split_spec(spec)
        method = Method(name)
        try:
            if path is not None:
                model = loader.load(path, what=name, expect=ExchangeStyleTransfer)
                method.stylize, method.source = _feed_forward(model.stylize), path
            elif name == "content":
                method.stylize, method.source = (lambda content, style: content), "the content"
            elif name == "efanet":
                method.stylize, method.source = models.efanet()
            elif name == "adain":
                model, method.source = models.adain()
                method.stylize = _feed_forward(model.stylize)
            elif name == "wct":
                try:
                    model, source = models.adain()
                except FileNotFoundError as e:
                    raise FileNotFoundError(f"wct uses AdaIN's decoder: {e}") from e
                method.stylize = _feed_forward(wct_lib.WCTStylizer(model).stylize)
                method.source = f"AdaIN decoder of {source}"
            else:
                method.stylize, method.time_fn = _gatys_functions(cfg, encoder)
                method.source = (
                    f"{cfg.gatys_optimizer}, {cfg.gatys_iterations} iterations, "
                    f"style weight {cfg.gatys_style_weight}"
                )
        except Exception as e:  # noqa: BLE001 - one method's failure must not stop the others.
            method.fail(e)
        result.append(method)
    return result


def _gatys_functions(cfg: EvalConfig, encoder):
    stylizer = gatys_lib.GatysStylizer(
        encoder,
        style_weight=cfg.gatys_style_weight,
        optimizer=cfg.gatys_optimizer,
        lr=cfg.gatys_lr,
    )

    def stylize(content, style):
        return stylizer.stylize(content, style, iterations=cfg.gatys_iterations)

    def time_fn(content, style, iterations=None):
        iterations = iterations or min(cfg.gatys_timing_iterations, cfg.gatys_iterations)
        stylizer.stylize(content, style, iterations=iterations).numpy()
        return iterations

    return stylize, time_fn


def warm_up(method: Method, content, style) -> None:
    """One untimed run of `method` (it traces the graphs); one iteration for optimisation."""
    if method.time_fn is None:
        method.stylize(content, style).numpy()
    else:
        method.time_fn(content, style, iterations=1)


def timed_run(method: Method, content, style) -> tuple[float, int | None]:
    """`(seconds, iterations)` of one run: the whole stylization, or
    `gatys_timing_iterations` optimisation steps (`iterations` None for feed-forward)."""
    start = time.perf_counter()
    if method.time_fn is None:
        method.stylize(content, style).numpy()
        return time.perf_counter() - start, None
    iterations = method.time_fn(content, style)
    return time.perf_counter() - start, iterations


def timing_summary(times, iterations=None, full_iterations=None) -> dict:
    """Table 2's cell of one method at one size from its per-round seconds.

    Returns:
      Dict with `seconds` (median; for an optimisation method the median
      per iteration times `full_iterations` when more than were timed),
      `min_s`, `max_s` and `runs` (each round's seconds) and, for
      optimisation methods, `iterations_timed`, `seconds_per_iteration` and
      `extrapolated`.
    """
    median = statistics.median(times)
    if iterations is None:
        return {"seconds": median, "min_s": min(times), "max_s": max(times), "runs": times}
    per_iteration = median / iterations
    full = full_iterations or iterations
    scale = full / iterations if full > iterations else 1.0
    return {
        "seconds": median * scale,
        "min_s": min(times) * scale,
        "max_s": max(times) * scale,
        "runs": times,
        "iterations_timed": iterations,
        "seconds_per_iteration": per_iteration,
        "extrapolated": full > iterations,
    }
