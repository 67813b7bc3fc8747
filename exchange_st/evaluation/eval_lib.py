"""Benchmark of Tables 1 and 2: perceptual loss and running time of the model, its ablations and the baselines."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from exchange_st.data import image_io
from exchange_st.evaluation import metrics
from exchange_st.evaluation.eval_config import UNTIMED_METHODS, EvalConfig
from exchange_st.evaluation.eval_methods import (
    build_methods,
    one_line,
    timed_run,
    timing_summary,
    warm_up,
)
from exchange_st.nn.vgg import VGGEncoder

RESULTS_FILE = "results.json"
GRID_FILE = "comparison.png"
# Statistics reported per method (Table 1 columns, then the extra column).
_TABLE1_COLUMNS = (
    ("content", "Content"),
    ("style", "Style"),
    ("total", "Overall"),
    ("meanstd_style", "Mean/std style [11]"),
)
# Grey of the comparison-grid cell of a method that produced no image.
_MISSING_CELL = 0.5


def _load_directory(directory, size, what, skip_unreadable=True):
    """Every readable image of `directory` (`image_io.load_square`).

    Returns:
      `(paths, images, skipped)`: `skipped` holds "path: what is wrong" for
      each image that cannot be read (none without `skip_unreadable`).

    Raises:
      image_io.ImageReadError: an image cannot be read and not
        `skip_unreadable`, or none can.
    """
    try:
        paths = image_io.list_images(directory)
    except ValueError as e:
        raise ValueError(f"{what} directory {directory}: {e}") from e
    kept, images, bad = [], [], []
    for path in paths:
        try:
            images.append(image_io.load_square(path, size, role=what))
            kept.append(path)
        except OSError as e:  # image_io.ImageReadError and FileNotFoundError.
            bad.append(str(e) if path in str(e) else f"{path}: {e}")
    if bad and (not skip_unreadable or not images):
        advice = "" if not images else " (--skip_unreadable evaluates the others)"
        raise image_io.ImageReadError(
            f"Cannot read {len(bad)} of the {len(paths)} images of the {what} directory "
            f"{directory}{advice}: {'; '.join(bad)}"
        )
    for reason in bad:
        logging.warning("Skipping a %s image that cannot be read: %s", what, reason)
    return kept, images, bad


def select_pairs(num_content, num_style, pairs, seed):
    """All `(content index, style index)` pairs, or `pairs` of them sampled without replacement."""
    every = [(i, j) for i in range(num_content) for j in range(num_style)]
    if pairs == 0 or pairs >= len(every):
        if pairs > len(every):
            logging.warning("Asked for %d pairs but only %d exist; using all.", pairs, len(every))
        return every
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(every), size=pairs, replace=False).tolist())
    return [every[k] for k in chosen]


def run_timings(cfg: EvalConfig, methods, content_path, style_path):
    """Table 2: `{method: {size: timing dict or {"error": ...}}}` on the first pair.

    At each size every method is warmed up, then timed in `timing_runs`
    interleaved rounds (each round runs every method once), so that a
    drifting load on a shared machine hits them alike; a cell is the median
    with its range (`eval_methods.timing_summary`).
    """
    timed = [m for m in methods if m.status == "ok" and m.name not in UNTIMED_METHODS]
    timings = {m.name: {} for m in timed}
    for size in cfg.timing_sizes:
        content = tf.constant(image_io.load_square(content_path, size)[None])
        style = tf.constant(image_io.load_square(style_path, size)[None])
        live = []
        for method in timed:
            try:
                warm_up(method, content, style)
                live.append(method)
            except Exception as e:  # noqa: BLE001 - e.g. out of memory at 1024.
                _timing_failed(timings, method, size, e)
        times = {m.name: [] for m in live}
        iterations = {}
        for r in range(cfg.timing_runs):
            logging.info("Timing at %d x %d: round %d/%d.", size, size, r + 1, cfg.timing_runs)
            for method in list(live):
                try:
                    seconds, iterations[method.name] = timed_run(method, content, style)
                except Exception as e:  # noqa: BLE001
                    _timing_failed(timings, method, size, e)
                    live.remove(method)
                    continue
                times[method.name].append(seconds)
        for method in live:
            timings[method.name][str(size)] = timing_summary(
                times[method.name], iterations[method.name], cfg.gatys_iterations
            )
    return timings


def _timing_failed(timings, method, size, error):
    timings[method.name][str(size)] = {"error": one_line(error)}
    logging.error("Timing %s at %d failed: %s", method.name, size, one_line(error))


# ----------------------------------------------------------------------------
# The benchmark.
# ----------------------------------------------------------------------------


def describe_device():
    """The device the numbers come from, with the CPU load (the CPU may be shared)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        ]
        return f"GPU: {', '.join(names)}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"1-min load average {load:.2f} at start"
    )


def _summary(values):
    keys = values[0].keys() if values else ()
    out = {}
    for key in keys:
        column = np.asarray([v[key] for v in values], np.float64)
        out[key] = {"mean": float(column.mean()), "std": float(column.std())}
    return out


def run(cfg: EvalConfig) -> dict:
    """Runs the benchmark and writes `results.json` and `comparison.png`.

    Args:
      cfg: `EvalConfig`.

    Returns:
      The `results.json` content: `config`, `device`, `tensorflow_version`,
      `num_pairs`, `methods` (per method: `status`, `error`, `source`,
      `metrics` `{name: {"mean", "std"}}`, `seconds_per_pair`), `timings`,
      `pairs` (per-pair values), `comparison_columns` and `table` (Markdown).

    Raises:
      FileNotFoundError, NotADirectoryError, ValueError,
      image_io.ImageReadError: missing or empty directories, unreadable images.
    """
    # Before the run: the load average says how busy a shared CPU was.
    device = describe_device()
    content_paths, contents, skipped = _load_directory(
        cfg.content_dir, cfg.size, "content", cfg.skip_unreadable
    )
    style_paths, styles, skipped_styles = _load_directory(
        cfg.style_dir, cfg.size, "style", cfg.skip_unreadable
    )
    skipped += skipped_styles
    pairs = select_pairs(len(contents), len(styles), cfg.pairs, cfg.seed)
    logging.info(
        "%d content x %d style images, %d pairs at %d x %d.",
        len(contents),
        len(styles),
        len(pairs),
        cfg.size,
        cfg.size,
    )
    if cfg.vgg_weights is None:
        logging.warning("vgg_weights=None: the metric uses a RANDOM VGG; numbers are meaningless.")
    encoder = VGGEncoder(cfg.vgg_weights, name="metric_vgg")
    methods = build_methods(cfg, encoder)

    values = {m.name: [] for m in methods}
    seconds = {m.name: [] for m in methods}
    per_pair = []
    grid = []
    scored = pairs if 1 in cfg.tables else []
    progress = keras.utils.Progbar(len(scored), unit_name="pair")
    for k, (i, j) in enumerate(scored):
        content = tf.constant(contents[i][None])
        style = tf.constant(styles[j][None])
        content_feats = metrics.encode(encoder, content)
        style_feats = metrics.encode(encoder, style)
        # The files under their own keys: "content" is also a method's name.
        record = {"content_file": content_paths[i], "style_file": style_paths[j]}
        row = [contents[i], styles[j]]
        for method in methods:
            output = None
            if method.status == "ok":
                try:
                    start = time.perf_counter()
                    output = method.stylize(content, style)
                    output = tf.convert_to_tensor(output).numpy()
                    seconds[method.name].append(time.perf_counter() - start)
                    result = metrics.perceptual_loss_from_features(
                        encoder, output, content_feats, style_feats
                    )
                    values[method.name].append(result)
                    record[method.name] = result
                except Exception as e:  # noqa: BLE001 - keep evaluating the others.
                    method.fail(e)
                    output = None
            row.append(output[0] if output is not None else _missing_cell(cfg.size))
        per_pair.append(record)
        if k < cfg.grid_rows:
            grid.append(row)
        progress.update(k + 1)

    timings = {}
    if cfg.timing_sizes:
        timings = run_timings(cfg, methods, content_paths[pairs[0][0]], style_paths[pairs[0][1]])

    results = {
        "config": dataclasses.asdict(cfg),
        "device": device,
        "tensorflow_version": tf.__version__,
        "num_pairs": len(scored),
        "skipped": skipped,
        "methods": {
            m.name: {
                "status": m.status,
                "error": m.error,
                "source": m.source,
                "num_pairs": len(values[m.name]),
                "metrics": _summary(values[m.name]) if m.status == "ok" else {},
                "seconds_per_pair": float(np.mean(seconds[m.name])) if seconds[m.name] else None,
            }
            for m in methods
        },
        "timings": timings,
        "comparison_columns": ["content", "style", *(m.name for m in methods)],
        "pairs": per_pair,
    }
    results["table"] = format_tables(results)
    os.makedirs(cfg.output_dir, exist_ok=True)
    with open(os.path.join(cfg.output_dir, RESULTS_FILE), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    if grid:
        image_io.save_image(os.path.join(cfg.output_dir, GRID_FILE), image_io.make_grid(grid))
    logging.info(
        "Wrote %s and %s (columns: %s).",
        os.path.join(cfg.output_dir, RESULTS_FILE),
        GRID_FILE,
        ", ".join(results["comparison_columns"]),
    )
    return results


def _missing_cell(size):
    return np.full((size, size, 3), _MISSING_CELL, np.float32)


def format_tables(results: dict) -> str:
    """Markdown tables shaped like Table 1 (perceptual loss) and Table 2 (time)."""
    cfg = results["config"]
    lines = []
    if 1 in cfg.get("tables", (1, 2)):
        lines += _table1_lines(results)
    sizes = [str(s) for s in cfg["timing_sizes"]]
    if sizes:
        lines += [
            *([""] if lines else []),
            f"Table 2. Running time in seconds: median (range) of {cfg['timing_runs']} "
            f"interleaved rounds after a warm-up; Gatys: {cfg['gatys_timing_iterations']} "
            f"iterations per round, ~ = extrapolated to {cfg['gatys_iterations']}. "
            f"Device: {results['device']}.",
            "",
            "| Method | " + " | ".join(f"{s}x{s}" for s in sizes) + " |",
            "|---" * (len(sizes) + 1) + "|",
        ]
        for name, info in results["methods"].items():
            if name in UNTIMED_METHODS:
                continue
            if info["status"] != "ok":
                cells = ["FAILED"] * len(sizes)
            else:
                cells = [_time_cell(results["timings"].get(name, {}).get(s)) for s in sizes]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table1_lines(results: dict) -> list[str]:
    cfg = results["config"]
    lines = [
        f"Table 1. Perceptual loss at {cfg['size']}x{cfg['size']} over "
        f"{results['num_pairs']} pairs (mean ± std; lower is better).",
        "",
        "| Method | " + " | ".join(title for _, title in _TABLE1_COLUMNS) + " |",
        "|---" * (len(_TABLE1_COLUMNS) + 1) + "|",
    ]
    for name, info in results["methods"].items():
        if info["status"] != "ok":
            cells = [f"FAILED: {info['error']}"] + [""] * (len(_TABLE1_COLUMNS) - 1)
        else:
            cells = [
                f"{info['metrics'][key]['mean']:.4f} ± {info['metrics'][key]['std']:.4f}"
                for key, _ in _TABLE1_COLUMNS
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _time_cell(timing):
    if timing is None:
        return "-"
    if "error" in timing:
        return "FAILED"
    spread = f"{timing['min_s']:.3g}-{timing['max_s']:.3g}" if "min_s" in timing else ""
    if timing.get("extrapolated"):
        return f"~{timing['seconds']:.3g} ({spread}; {timing['seconds_per_iteration']:.3g}/it)"
    return f"{timing['seconds']:.3g} ({spread})" if spread else f"{timing['seconds']:.3g}"
