r"""Peak memory of stylizing large square images on the CPU, plain and tiled.

Every (size, method) runs in a fresh subprocess whose peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`) is the number reported, so
sizes do not inherit each other's allocator state. Before a plain run the
peak is extrapolated from the largest plain size measured so far (activation
memory grows with the pixel count); a run whose estimate exceeds the budget
is skipped instead of started. Each child also caps its own address space
(`RLIMIT_AS`) at the budget once the model is built, so a wrong estimate
ends that child with an allocation error instead of exhausting a shared
machine.

    python -m bench.memory --sizes=1024,2048,4096 --methods=plain,tiled

Methods: `plain` is `model.stylize` (eager, as a user calls it); `tiled` is
`tiling.stylize_tiled` with `--tile`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import psutil
from absl import app, flags, logging

from bench import common

METHODS = ("plain", "tiled")
_GIB = 1024**3
_RESULT_PREFIX = "MEMORY_RESULT "


@dataclasses.dataclass
class MemoryBenchConfig:
    """What `run` measures.

    Attributes:
      sizes: square content sides, measured in increasing order.
      methods: "plain" and/or "tiled".
      style_size: square style side.
      tile: tile side of the tiled method (pixels).
      overlap: blend width of the tiled method (pixels).
      budget_gib: most memory a child may use; 0 = the available memory minus
        `reserve_gib` at start.
      reserve_gib: memory left to the rest of the machine when `budget_gib` is 0.
      vgg_weights: VGG weights (None = random; memory does not depend on them).
      timeout_s: seconds after which a child is killed.
      output: JSON report path.
      seed: seed of weights and inputs.
    """

    sizes: tuple[int, ...] = (1024, 2048, 4096)
    methods: tuple[str, ...] = METHODS
    style_size: int = 512
    tile: int = 1024
    overlap: int = 64
    budget_gib: float = 0.0
    reserve_gib: float = 6.0
    vgg_weights: str | None = None
    timeout_s: float = 1800.0
    output: str = "bench_out/memory.json"
    seed: int = 0


def mem_available_gib() -> float:
    """Memory available without swapping (`psutil`), in GiB."""
    return psutil.virtual_memory().available / _GIB


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child_main(size: int, method: str, cfg: MemoryBenchConfig) -> dict:
    """Builds the model, caps the address space, stylizes once; returns the measurements."""
    import keras
    import tensorflow as tf

    from exchange_st.inference import tiling
    from exchange_st.nn.model import ExchangeStyleTransfer

    keras.utils.set_random_seed(cfg.seed)
    model = ExchangeStyleTransfer(vgg_weights=cfg.vgg_weights)
    model.build()
    content = common.random_images([1, size, size, 3], cfg.seed + 1)
    style = common.random_images([1, cfg.style_size, cfg.style_size, 3], cfg.seed + 2)
    base_rss = _proc_status_bytes("VmRSS")
    base_peak = _peak_rss_bytes()
    # Address space may grow by at most what RSS may grow by: RSS can never
    # pass the budget, and an allocation beyond it fails in this process only.
    allowed = int(cfg.budget_gib * _GIB) - base_rss
    limit = _proc_status_bytes("VmSize") + max(allowed, 0)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "plain":
        out = model.stylize(content, style)
    else:
        out = tiling.stylize_tiled(model, content, style, tile=cfg.tile, overlap=cfg.overlap)
    out = out.numpy()
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    assert out.shape == (1, size, size, 3), out.shape
    return {
        "size": size,
        "method": method,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "base_rss_gib": base_rss / _GIB,
        "base_peak_rss_gib": base_peak / _GIB,
        "peak_rss_gib": _peak_rss_bytes() / _GIB,
        "peak_minus_base_gib": (_peak_rss_bytes() - base_rss) / _GIB,
        "output_finite": bool(tf.reduce_all(tf.math.is_finite(out))),
        "tf_version": tf.__version__,
    }


def _run_child(size: int, method: str, cfg: MemoryBenchConfig) -> dict:
    args = [
        sys.executable,
        "-m",
        "bench.memory",
        "--child",
        f"--sizes={size}",
        f"--methods={method}",
        f"--style_size={cfg.style_size}",
        f"--tile={cfg.tile}",
        f"--overlap={cfg.overlap}",
        f"--budget_gib={cfg.budget_gib}",
        f"--seed={cfg.seed}",
    ]
    if cfg.vgg_weights:
        args.append(f"--vgg_weights={cfg.vgg_weights}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=cfg.timeout_s,
            env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    except subprocess.TimeoutExpired:
        return {"size": size, "method": method, "status": f"timeout after {cfg.timeout_s:g} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            return dict(json.loads(line[len(_RESULT_PREFIX) :]), status="ok")
    tail = (proc.stderr or proc.stdout)[-1500:]
    return {
        "size": size,
        "method": method,
        "status": f"failed (exit {proc.returncode}, likely the {cfg.budget_gib:.1f} GiB cap)",
        "wall_s": time.perf_counter() - t0,
        "stderr_tail": tail,
    }


def estimate_peak_gib(measured: list[dict], size: int) -> float | None:
    """Extrapolated peak RSS at `size` from the largest plain run: base + delta * pixel ratio."""
    ok = [r for r in measured if r.get("status") == "ok"]
    if not ok:
        return None
    ref = max(ok, key=lambda r: r["size"])
    scale = (size / ref["size"]) ** 2
    return ref["base_rss_gib"] + ref["peak_minus_base_gib"] * scale


def run(cfg: MemoryBenchConfig) -> dict:
    """Measures every (size, method) in its own process; prints a table; writes JSON."""
    if not cfg.budget_gib:
        cfg = dataclasses.replace(cfg, budget_gib=round(mem_available_gib() - cfg.reserve_gib, 1))
    if cfg.budget_gib <= 1:
        raise RuntimeError(f"not enough free memory for a run (budget {cfg.budget_gib} GiB)")
    report = {"config": dataclasses.asdict(cfg), "environment": common.environment("/CPU:0")}
    results = []
    for method in cfg.methods:
        measured = []
        for size in sorted(cfg.sizes):
            estimate = estimate_peak_gib(measured, size) if method == "plain" else None
            if estimate is not None and estimate > cfg.budget_gib:
                result = {
                    "size": size,
                    "method": method,
                    "status": f"skipped: estimated peak {estimate:.1f} GiB > budget "
                    f"{cfg.budget_gib:.1f} GiB",
                }
            else:
                logging.info("Running %s at %d (estimate %s GiB).", method, size, estimate)
                result = _run_child(size, method, cfg)
            result["estimated_peak_gib"] = estimate
            measured.append(result)
            results.append(result)
            logging.info("%s", {k: v for k, v in result.items() if k != "stderr_tail"})
    report["results"] = results
    rows = [
        [
            r["size"],
            r["method"],
            r.get("peak_rss_gib", float("nan")),
            r.get("peak_minus_base_gib", float("nan")),
            r.get("estimated_peak_gib") or float("nan"),
            r.get("seconds", float("nan")),
            r["status"],
        ]
        for r in results
    ]
    print(f"content NxN, style {cfg.style_size}x{cfg.style_size}, budget {cfg.budget_gib} GiB")
    print(
        common.format_table(
            ["size", "method", "peak GiB", "peak-base GiB", "est. GiB", "seconds", "status"], rows
        )
    )
    common.write_json(cfg.output, report)
    for r in results:
        if r["size"] == max(cfg.sizes):
            print(
                f"KEY {r['method']} {r['size']}x{r['size']}: {r['status']}"
                + (f", peak RSS {r['peak_rss_gib']:.2f} GiB" if "peak_rss_gib" in r else "")
            )
    return report


FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["1024", "2048", "4096"], "Square content sides.")
flags.DEFINE_list("methods", list(METHODS), "plain and/or tiled.")
flags.DEFINE_integer("style_size", 512, "Square style side.")
flags.DEFINE_integer("tile", 1024, "Tile side of the tiled method (pixels).")
flags.DEFINE_integer("overlap", 64, "Blend width of the tiled method (pixels).")
flags.DEFINE_float("budget_gib", 0.0, "Memory cap per run; 0 = available memory - reserve_gib.")
flags.DEFINE_float("reserve_gib", 6.0, "Memory left to the machine when budget_gib is 0.")
flags.DEFINE_string("vgg_weights", None, "VGG-19 notop h5 path; default random.")
flags.DEFINE_float("timeout_s", 1800.0, "Seconds after which a run is killed.")
flags.DEFINE_string("output", "bench_out/memory.json", "JSON report path.")
flags.DEFINE_integer("seed", 0, "Seed of weights and inputs.")
flags.DEFINE_bool("child", False, "Internal: measure one size/method in this process.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for m in FLAGS.methods:
        if m not in METHODS:
            raise app.UsageError(f"--methods must be from {METHODS}, got {m!r}")
    cfg = MemoryBenchConfig(
        sizes=tuple(int(s) for s in FLAGS.sizes),
        methods=tuple(FLAGS.methods),
        style_size=FLAGS.style_size,
        tile=FLAGS.tile,
        overlap=FLAGS.overlap,
        budget_gib=FLAGS.budget_gib,
        reserve_gib=FLAGS.reserve_gib,
        vgg_weights=FLAGS.vgg_weights,
        timeout_s=FLAGS.timeout_s,
        output=FLAGS.output,
        seed=FLAGS.seed,
    )
    if FLAGS.child:
        result = child_main(cfg.sizes[0], cfg.methods[0], cfg)
        print(_RESULT_PREFIX + json.dumps(result), flush=True)
        return
    run(cfg)


if __name__ == "__main__":
    app.run(main)
