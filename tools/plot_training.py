r"""Plots a training run's loss terms (train_log.csv) against the step, as a PNG.

    python -m tools.plot_training --csv=runs/gpu_jax/train_log.csv --output=loss.png

Needs matplotlib (not a dependency of the package).
"""

import csv
import math

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("csv", None, "train_log.csv written by train.py.")
flags.DEFINE_string("output", None, "PNG to write.")
flags.DEFINE_list(
    "terms", ["loss", "content", "style", "rec", "com"], "Columns plotted (log scale)."
)
flags.mark_flags_as_required(["csv", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import matplotlib

    matplotlib.use("Agg")  # No display on a training machine.
    import matplotlib.pyplot as plt

    with open(FLAGS.csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise app.UsageError(f"{FLAGS.csv} has no rows.")
    steps = [int(float(r["step"])) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for term in FLAGS.terms:
        values = [float(r.get(term) or "nan") for r in rows]
        if any(math.isfinite(v) and v > 0 for v in values):
            ax.plot(steps, values, label=term)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean since the previous row")
    rates = [float(r["steps_per_sec"]) for r in rows if r.get("steps_per_sec")]
    rates = [r for r in rates if math.isfinite(r)]
    title = f"{FLAGS.csv}: step {steps[-1]}"
    if rates:
        title += f", {rates[-1]:.3g} steps/s"
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(FLAGS.output)
    print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
