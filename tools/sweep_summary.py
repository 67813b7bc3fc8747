r"""The GPU sweep's table, the rule that picks the release, and the archive of what it made.

    python -m tools.sweep_summary --variants=configs/sweep.txt --run_root=/tmp/gpu_sweep \
        --output_dir=$OUT [--partial]

For every variant of `--variants` it reads what `tools/gpu_sweep.sh` left in
`--run_root`: `<name>.status` (how the start went), `<name>/train_log.csv`
(steps, steps/s, losses), `<name>.flops.json` and `<name>.eval.json`
(`tools.sweep_eval`). It
writes `summary.md` (the table, the rule and each variant's verdict),
`sweep.tar.gz` (the grids, curves, logs, CSVs and reports; one plot of every
variant's curves when matplotlib is there) and `<run_root>/choice.json` (the
EFANet variant to release, or none, and whether AdaIN's weights ship).
`--partial` (while training) writes the progress so far and chooses nothing.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import statistics
import tarfile

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags; defined when it runs, so that tests can import this module."""
    flags.DEFINE_string("variants", "configs/sweep.txt", "The sweep's variants file.")
    flags.DEFINE_string("run_root", None, "Folder of the variants' runs.", required=True)
    flags.DEFINE_string("output_dir", None, "Where summary.md and sweep.tar.gz go.", required=True)
    flags.DEFINE_bool("partial", False, "Progress only (while training): no rule, no choice.")
    flags.DEFINE_float("peak_tflops", 790.0, "Peak of the chip for MFU (dense bf16 of an H200).")
    flags.DEFINE_bool(
        "rehearsal",
        False,
        "CPU rehearsal only: every variant that was evaluated passes, so that the release "
        "path runs on a few steps' weights. Never on a real sweep.",
    )


# The rule that picks the release, fixed before any run (docs/gpu.md). An EFANet
# variant qualifies when the style reaches its decoder (v_r_s's spread across
# 20 styles >= 5% of its RMS), two very different styles give visibly
# different pictures at 512 px (mean |out(la_muse) - out(sketch)| >= 0.06)
# and the picture follows the content (luminance correlation with the
# content >= 0.2); among those, the lowest Table 1 total on the 4 pairs is
# released. AdaIN's weights ship when it passes the last two checks.
MIN_V_R_SPREAD = 0.05
MIN_STYLE_MOVE = 0.06
MIN_CONTENT_CORR = 0.2
RULE = (
    f"EFANet variants with v_r_s spread >= {MIN_V_R_SPREAD:.0%}, style move (mean "
    f"|out(la_muse) - out(sketch)| at 512 px) >= {MIN_STYLE_MOVE} and content correlation "
    f">= {MIN_CONTENT_CORR} qualify; the lowest Table 1 total of those on the 4 pairs is "
    f"released. AdaIN ships when it passes the style-move and content checks."
)


def read_variants(path) -> list[tuple[str, str]]:
    """`[(name, flags)]` of a variants file: one `name flags...` per line, `#` comments."""
    variants = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, rest = line.partition(" ")
                variants.append((name, rest.strip()))
    return variants


def _read_csv(path) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_text(path) -> str:
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def collect(name, run_root, peak_tflops) -> dict:
    """Everything known of one variant."""
    rows = _read_csv(os.path.join(run_root, name, "train_log.csv"))
    evaluation = _read_json(os.path.join(run_root, f"{name}.eval.json"))
    v = {"name": name, "status": _read_text(os.path.join(run_root, f"{name}.status"))}
    v["eval"] = evaluation
    if rows:
        # The first row holds the compiling step; later rows are steady.
        rates = [r["steps_per_sec"] for r in rows[1:] or rows if r.get("steps_per_sec")]
        v["step"] = int(rows[-1]["step"])
        v["steps_per_sec"] = statistics.median(rates) if rates else None
        v["last"] = rows[-1]
    # From the evaluation, or while training from the smoke run's config.
    step_flops = (evaluation or {}).get("step_flops") or (
        _read_json(os.path.join(run_root, f"{name}.flops.json")) or {}
    ).get("step_flops")
    if step_flops and v.get("steps_per_sec"):
        v["tflops"] = v["steps_per_sec"] * step_flops / 1e12
        v["mfu"] = v["tflops"] / peak_tflops
    return v


def verdict(v, rehearsal=False) -> tuple[bool, str]:
    """Whether a variant passes its checks, and why not."""
    e = v["eval"]
    if e is None:
        return False, v["status"] or "no evaluation"
    if rehearsal:
        return True, "passes (rehearsal: the rule is off)"
    failed = []
    if e["model"] == "ExchangeStyleTransfer" and e.get("v_r_spread", 0.0) < MIN_V_R_SPREAD:
        failed.append(f"v_r_s spread {e.get('v_r_spread', 0.0):.2%} < {MIN_V_R_SPREAD:.0%}")
    if e.get("style_move", 0.0) < MIN_STYLE_MOVE:
        failed.append(f"style move {e.get('style_move', 0.0):.3f} < {MIN_STYLE_MOVE}")
    if e["content_corr"] < MIN_CONTENT_CORR:
        failed.append(f"content corr {e['content_corr']:.2f} < {MIN_CONTENT_CORR}")
    return not failed, "passes" if not failed else "; ".join(failed)


def choose(variants, rehearsal=False) -> dict:
    """`{"efanet": name or None, "adain": name or None}` by the rule."""
    passing = [v for v in variants if verdict(v, rehearsal)[0]]
    efanets = [v for v in passing if v["eval"]["model"] == "ExchangeStyleTransfer"]
    adains = [v for v in passing if v["eval"]["model"] == "AdaINNet"]
    best = min(efanets, key=lambda v: v["eval"]["table1"]["total"], default=None)
    adain = min(adains, key=lambda v: v["eval"]["table1"]["total"], default=None)
    return {"efanet": best and best["name"], "adain": adain and adain["name"]}


def _fmt(value, spec):
    return "–" if value is None else format(value, spec)


def table(variants, choice=None, rehearsal=False) -> str:
    head = (
        "| variant | status | steps | steps/s | TFLOP/s | MFU | content | style | rec | com "
        "| Table 1 content | style | total | v_r_s spread | style move | content corr "
        "| colour / chroma follow (slope) | hue headroom | verdict |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for v in variants:
        last, e = v.get("last", {}), v["eval"] or {}
        t1 = e.get("table1", {})
        ok, why = verdict(v, rehearsal) if choice is not None else (False, "")
        if choice is not None and ok and v["name"] == choice["efanet"]:
            why = "**released**"
        elif choice is not None and ok and v["name"] == choice["adain"]:
            why = "**ships**"
        steps = str(v.get("step", "–"))
        if e.get("step") is not None and e["step"] != v.get("step"):
            steps += f" (evaluated: {e['step']})"  # A run killed after its last save.
        lines.append(
            f"| {v['name']} | {v['status'] or '–'} | {steps} "
            f"| {_fmt(v.get('steps_per_sec'), '.3g')} | {_fmt(v.get('tflops'), '.3g')} "
            f"| {_fmt(v.get('mfu'), '.2%')} | {_fmt(last.get('content'), '.3g')} "
            f"| {_fmt(last.get('style'), '.3g')} | {_fmt(last.get('rec'), '.3g')} "
            f"| {_fmt(last.get('com'), '.3g')} | {_fmt(t1.get('content'), '.3g')} "
            f"| {_fmt(t1.get('style'), '.3g')} | {_fmt(t1.get('total'), '.3g')} "
            f"| {_fmt(e.get('v_r_spread'), '.2%')} | {_fmt(e.get('style_move'), '.3f')} "
            f"| {_fmt(e.get('content_corr'), '.2f')} "
            f"| {_fmt((e.get('colour_follow') or {}).get('slope'), '.2f')} / "
            f"{_fmt((e.get('chroma_follow') or {}).get('slope'), '.2f')} "
            f"| {_fmt(e.get('hue_headroom'), '.2f')} | {why} |"
        )
    return "\n".join(lines)


def dependence_table(variants) -> str:
    """Spread / RMS of every stage (rows) for each EFANet variant (columns)."""
    reports = {
        v["name"]: v["eval"]["style_dependence"]
        for v in variants
        if v["eval"] and "style_dependence" in v["eval"]
    }
    if not reports:
        return ""
    stages = list(next(iter(reports.values())))
    lines = ["| stage | " + " | ".join(reports) + " |", "|" + "---|" * (len(reports) + 1)]
    for stage in stages:
        cells = " | ".join(f"{r[stage]['ratio']:.2%}" for r in reports.values())
        lines.append(f"| {stage} | {cells} |")
    return "\n".join(lines)


def plot_curves(variants, run_root, path) -> bool:
    """One figure of every variant's loss terms against the step; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    terms = ("loss", "content", "style", "rec")
    fig, axes = plt.subplots(1, len(terms), figsize=(5 * len(terms), 4))
    for i, v in enumerate(variants):
        rows = _read_csv(os.path.join(run_root, v["name"], "train_log.csv"))
        for ax, term in zip(axes, terms):
            points = [(r["step"], r[term]) for r in rows if term in r]
            if points:
                # One colour per variant in every panel (AdaIN has no rec).
                ax.plot(*zip(*points), label=v["name"], color=f"C{i}")
    for ax, term in zip(axes, terms):
        ax.set_title(term)
        ax.set_yscale("log")
        ax.set_xlabel("step")
    if axes[0].lines:
        axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def archive(variants, run_root, path):
    """The grids, curves, logs, CSVs and reports into one tar.gz (written atomically)."""
    patterns = ["curves.png", "sweep.log"]
    for v in variants:
        n = v["name"]
        patterns += [f"{n}.status", f"{n}.log", f"{n}.smoke.log", f"{n}.eval.json"]
        patterns += [f"{n}.eval.log", f"{n}.grid.jpg", f"{n}/train_log.csv", f"{n}/config.json"]
        grids = sorted(
            glob.glob(os.path.join(run_root, n, "images", "step-*.png")),
            key=lambda p: int(os.path.basename(p)[5:-4]),
        )
        if grids:
            patterns.append(os.path.relpath(grids[-1], run_root))
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for rel in patterns:
            full = os.path.join(run_root, rel)
            if os.path.isfile(full):
                tar.add(full, arcname=os.path.join("sweep", rel))
    os.replace(tmp, path)


def main(argv):
    del argv
    names = [name for name, _ in read_variants(FLAGS.variants)]
    variants = [collect(n, FLAGS.run_root, FLAGS.peak_tflops) for n in names]
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    plot_curves(variants, FLAGS.run_root, os.path.join(FLAGS.run_root, "curves.png"))
    choice = None if FLAGS.partial else choose(variants, FLAGS.rehearsal)
    rule = "OFF (CPU rehearsal)" if FLAGS.rehearsal else RULE
    parts = ["# GPU sweep", "", f"Rule: {rule}", "", table(variants, choice, FLAGS.rehearsal), ""]
    if choice is not None:
        parts += [
            f"Released EFANet: {choice['efanet'] or 'none'}; AdaIN ships: "
            f"{choice['adain'] or 'no'}.",
            "",
        ]
        dependence = dependence_table(variants)
        if dependence:
            parts += [
                "Style dependence (spread across styles / RMS, first content, 256 px):",
                "",
                dependence,
                "",
            ]
        with open(os.path.join(FLAGS.run_root, "choice.json"), "w", encoding="utf-8") as f:
            json.dump(choice, f)
    else:
        parts.append("(in progress: no evaluation yet)")
    text = "\n".join(parts)
    tmp = os.path.join(FLAGS.output_dir, "summary.md.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, os.path.join(FLAGS.output_dir, "summary.md"))
    archive(variants, FLAGS.run_root, os.path.join(FLAGS.output_dir, "sweep.tar.gz"))
    print(text, flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
