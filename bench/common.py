"""Shared helpers of the bench scripts: device, precision, timing, profiles, tables, JSON.

Backend-neutral: TensorFlow is imported only on the TensorFlow backend (and
for its profiler), so the benchmarks also run where only JAX is installed,
as on the CUDA machines this project trains on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
from absl import logging

PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")


def backend() -> str:
    return keras.backend.backend()


def select_device(device: str = "") -> str:
    """The device to run on: `device` if given, else the first GPU, else the CPU.

    TensorFlow device names (`/GPU:0`); on JAX the name of `jax.devices()[0]`
    (JAX places arrays on its default device, the first GPU if there is one).
    """
    if backend() == "tensorflow":
        import tensorflow as tf

        if device:
            return device
        return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
    if device:
        raise ValueError(f"--device is TensorFlow-only; on {backend()} set JAX_PLATFORMS instead")
    import jax

    first = jax.devices()[0]
    return f"{first.platform}:{first.id} ({first.device_kind})"


def device_scope(device: str):
    """`tf.device(device)` on TensorFlow; nothing elsewhere (see `select_device`)."""
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.device(device)
    return contextlib.nullcontext()


def set_precision(mode: str):
    """Sets the global Keras dtype policy before models are built."""
    if mode not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {mode!r}")
    keras.mixed_precision.set_global_policy("float32" if mode == "none" else mode)


def materialize(result):
    """Waits until every tensor of `result` is computed.

    TensorFlow tensors are copied to the host (reading the value is how TF
    waits). JAX arrays are waited for where they are (`block_until_ready`):
    device work is asynchronous, and a copy to the host would add a transfer
    that a GPU timing should not contain.
    """
    if backend() == "jax":
        import jax

        return jax.block_until_ready(result)
    return keras.tree.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)


def load_average() -> tuple[float, float, float] | None:
    """`os.getloadavg()` where the OS has it: other processes on the machine slow the numbers."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def print_load(when: str = "start"):
    """Prints the load average: every benchmark states how busy the machine was."""
    load = load_average()
    if load is not None:
        print(
            f"load average at {when} (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"on {os.cpu_count()} CPUs",
            flush=True,
        )
    return load


@dataclasses.dataclass
class Timing:
    """Seconds of the timed (post-warm-up) calls of one function.

    `times` are wall-clock; `cpu_times` are this process's CPU seconds over
    the same calls (all threads), which other processes on a shared machine
    disturb less than the wall clock.
    """

    times: list[float] = dataclasses.field(default_factory=list)
    cpu_times: list[float] = dataclasses.field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def worst(self) -> float:
        return max(self.times) if self.times else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_times) if self.cpu_times else float("nan")

    def to_dict(self) -> dict:
        return {
            "median_s": self.median,
            "min_s": self.best,
            "max_s": self.worst,
            "times_s": self.times,
            "cpu_median_s": self.cpu_median,
            "cpu_times_s": self.cpu_times,
        }


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    warmup: int = 1,
    repeats: int = 5,
    budget_s: float | None = None,
    min_rounds: int = 3,
) -> dict[str, Timing]:
    """Times several functions round-robin: warm-up rounds, then up to `repeats` timed rounds.

    Each round calls every function once, so slow drifts of a shared
    machine's load hit all of them alike and their ratios stay meaningful.
    Timed rounds stop early once `budget_s` seconds of timed rounds have
    passed, but never before `min_rounds` (capped by `repeats`): a spread
    needs at least three rounds.

    Args:
      fns: `{name: zero-argument callable}`; results are copied to the host.
      warmup: untimed rounds (tracing, oneDNN primitive creation, allocator).
      repeats: maximum timed rounds.
      budget_s: optional time budget of the timed rounds.
      min_rounds: timed rounds run whatever the budget.

    Returns:
      `{name: Timing}`.
    """
    for _ in range(warmup):
        for fn in fns.values():
            materialize(fn())
    timings = {name: Timing() for name in fns}
    start = time.perf_counter()
    for round_ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            materialize(fn())
            timings[name].times.append(time.perf_counter() - t0)
            timings[name].cpu_times.append(time.process_time() - c0)
        over_budget = budget_s is not None and time.perf_counter() - start > budget_s
        if over_budget and round_ + 1 >= min_rounds:
            break
    return timings


def round_ratios(numerator: Timing, denominator: Timing) -> list[float]:
    """Per-round ratios of two interleaved timings (round i of each ran back to back)."""
    return [a / b for a, b in zip(numerator.times, denominator.times)]


def spread(values) -> tuple[float, float, float]:
    """`(median, min, max)` of a list of per-round figures."""
    return statistics.median(values), min(values), max(values)


def verdict(low: float, high: float, target: float, at_most: bool = True) -> str:
    """Whether a figure whose rounds span [low, high] meets `target` (an upper bound if `at_most`).

    A spread that straddles the target cannot claim either side, and says so.
    """
    meets = high <= target if at_most else low >= target
    misses = low > target if at_most else high < target
    if meets:
        return "meets the target in every round"
    if misses:
        return "misses the target in every round"
    return "spread straddles the target: inconclusive"


def random_array(shape, seed: int) -> np.ndarray:
    """Uniform `[B, H, W, 3]` float32 images in [0, 1] as NumPy, the same on every backend."""
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def random_images(shape, seed: int):
    """`random_array` as a backend tensor (on the current TF device scope, or JAX's default)."""
    return keras.ops.convert_to_tensor(random_array(shape, seed))


def environment(device: str) -> dict:
    """What the numbers depend on; written into every JSON report."""
    info = {
        "backend": backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "dtype_policy": keras.mixed_precision.global_policy().name,
    }
    if backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["gpus"] = [d.name for d in tf.config.list_logical_devices("GPU")]
    elif backend() == "jax":
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [f"{d.platform}:{d.id} {d.device_kind}" for d in jax.devices()]
    load = load_average()
    if load is not None:
        # Other processes share the CPU: the load explains absolute numbers.
        info["load_average_1m"] = load[0]
        info["load_average"] = list(load)
    return info


def compile_function(fn: Callable, variables, jit: bool | None = None) -> Callable:
    """`fn(*tensors)` compiled as the backend compiles a model's inference.

    TensorFlow: a `tf.function` (`jit_compile=jit`: XLA when True). JAX:
    `jax.jit` with the model's `variables` passed in as arguments through a
    `keras.StatelessScope` (a jitted closure over Keras variables would bake
    every weight into the program as a constant); `jit=False` runs `fn` op
    by op. `variables`: every variable `fn` reads (`model.variables`); on
    JAX their values are read once, here (an inference benchmark does not
    change them, and gathering them per call would be timed).
    """
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit or None)
    if backend() != "jax":
        raise NotImplementedError(f"benchmarks run on tensorflow or jax, not {backend()}")
    if jit is False:
        return fn
    import jax

    variables = list(variables)
    values = [v.value for v in variables]

    def stateless(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    jitted = jax.jit(stateless)
    return lambda *args: jitted(values, *args)


def write_json(path: str, payload: dict):
    """Writes `payload` as indented JSON, creating the directory."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=_json_default)
    logging.info("Wrote %s", path)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def format_table(header: list[str], rows: list[list]) -> str:
    """A plain-text table; floats get 3 significant digits (4 for small values)."""

    def cell(v):
        if isinstance(v, float):
            if v != v:
                return "-"
            return f"{v:.4g}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(out)


def trace(logdir: str, fn: Callable[[], object]):
    """Runs `fn` under the backend's profiler, writing a trace (`*.xplane.pb`) under `logdir`."""
    os.makedirs(logdir, exist_ok=True)
    if backend() == "jax":
        import jax

        with jax.profiler.trace(logdir):
            materialize(fn())
        return
    import tensorflow as tf

    tf.profiler.experimental.start(logdir)
    try:
        materialize(fn())
    finally:
        tf.profiler.experimental.stop()


def profile_op_summary(logdir: str, top: int = 25) -> list[dict]:
    """Aggregates a `tf.profiler.experimental` trace into per-op-type self times.

    Reads the newest `*.xplane.pb` under `logdir` and sums the durations of
    the TF op events on the host planes (the CPU executor threads), grouped
    by op type (`Conv2D`, `BatchMatMulV2`, ...). On a GPU trace the device
    plane's kernels are summed instead.

    Returns:
      Up to `top` dicts `{"op": type, "ms": total, "count": n, "share": fraction}`
      sorted by time, shares relative to all op time of the trace.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(
        glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True),
        key=os.path.getmtime,
    )
    if not files:
        raise FileNotFoundError(f"no *.xplane.pb under {logdir}")
    space = xplane_pb2.XSpace()
    with open(files[-1], "rb") as f:
        space.ParseFromString(f.read())
    device_planes = [p for p in space.planes if p.name.startswith("/device:GPU")]
    planes = device_planes or [p for p in space.planes if p.name.startswith("/host:CPU")]
    totals: dict[str, list] = {}
    for plane in planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not device_planes and "TraceMe" in line.name:
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # Executor op events are named "node_name:OpType"; runtime
                # events ("ThreadpoolListener::Record", "EagerLocalExecute: f")
                # are not ops.
                if ":" not in name or "::" in name or ": " in name:
                    continue
                op = name.rsplit(":", 1)[-1]
                entry = totals.setdefault(op, [0.0, 0])
                entry[0] += event.duration_ps / 1e9
                entry[1] += 1
    all_ms = sum(v[0] for v in totals.values()) or 1.0
    rows = sorted(totals.items(), key=lambda kv: -kv[1][0])[:top]
    return [{"op": op, "ms": ms, "count": n, "share": ms / all_ms} for op, (ms, n) in rows]
