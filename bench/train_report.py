"""The text report of `bench.train_step`: one KEY line per variant and the comparisons asked for."""

from __future__ import annotations

import dataclasses

from bench.train_variants import TARGET_PIPELINE_OVER_MODEL, TrainBenchConfig, Variant


def _fmt_range(times: list[float]) -> str:
    return f"{1 / max(times):.3g}-{1 / min(times):.3g}"


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
