r"""Plots training runs' loss terms (train_log.csv) against the step, as a PNG.

    python -m tools.plot_training --csv=runs/gpu_jax/train_log.csv --output=loss.png
    python -m tools.plot_training --csv=float32=runs/f32/train_log.csv,bfloat16=runs/bf16/train_log.csv \
        --terms=loss,style --output=precision.png

One panel per term (log scale), one line per run. Needs matplotlib (not a
dependency of the package).
"""

import csv
import math
import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("csv", None, "train_log.csv files written by train.py, each [label=]path.")
flags.DEFINE_string("output", None, "PNG to write.")
flags.DEFINE_list(
    "terms", ["loss", "content", "style", "rec", "com"], "Columns plotted (log scale)."
)
flags.DEFINE_string("title", "", "Figure title (default: the run and its last step).")
flags.mark_flags_as_required(["csv", "output"])


def read_runs(items) -> list[tuple[str, list[dict]]]:
    runs = []
    for item in items:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = os.path.basename(os.path.dirname(item)) or item, item
        with open(os.path.expanduser(path), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise app.UsageError(f"{path} has no rows.")
        runs.append((label, rows))
    return runs


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import matplotlib

    matplotlib.use("Agg")  # No display on a training machine.
    import matplotlib.pyplot as plt

    runs = read_runs(FLAGS.csv)
    terms = list(FLAGS.terms)
    single = len(runs) == 1
    panels = 1 if single else len(terms)
    fig, axes = plt.subplots(1, panels, figsize=(8 if single else 4 * panels, 4.5), dpi=100)
    axes = [axes] if panels == 1 else list(axes)
    for i, (label, rows) in enumerate(runs):
        steps = [int(float(r["step"])) for r in rows]
        for j, term in enumerate(terms):
            values = [float(r.get(term) or "nan") for r in rows]
            if not any(math.isfinite(v) and v > 0 for v in values):
                continue
            ax = axes[0 if single else j]
            ax.plot(
                steps, values, label=term if single else label, color=None if single else f"C{i}"
            )
            ax.set_title("" if single else term, fontsize=10)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("mean since the previous row")
    axes[0].legend(fontsize=8)
    title = FLAGS.title
    if not title and single:
        label, rows = runs[0]
        rates = [float(r["steps_per_sec"]) for r in rows if r.get("steps_per_sec")]
        rates = [r for r in rates if math.isfinite(r)]
        title = f"{FLAGS.csv[0]}: step {int(float(rows[-1]['step']))}"
        if rates:
            title += f", {rates[-1]:.3g} steps/s"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(FLAGS.output)
    print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
