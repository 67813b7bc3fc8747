r"""Plots evaluation curves (train.py's eval_log.csv) of one or more runs side by side, as a PNG.

    python -m tools.plot_eval_curve --runs=preview=~/runs/cpu_preview/eval_log.csv \
        --output=docs/images/cpu_preview_curve.png

Six panels against the step: chroma follow (the output's hue following the
style's; the release rule's 0.3 drawn), `v_r_s` spread (the rule's 5%),
style gain, luminance correlation with the content (the rule's 0.4), hue
headroom, and Table 1's content and style terms. Needs matplotlib (not a
dependency of the package).
"""

import os

from absl import app, flags

from exchange_st.training import evaluation_curve

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "runs", None, "label=path of an eval_log.csv (or its model_dir), comma-separated."
)
flags.DEFINE_string("output", None, "PNG to write.")
flags.DEFINE_string("title", "", "Figure title.")
flags.DEFINE_integer("max_step", None, "Plot the steps up to this one only.")
flags.mark_flags_as_required(["runs", "output"])

# (column, panel title, the release rule's threshold or None).
PANELS = (
    ("chroma_follow", "chroma follow (slope)", 0.3),
    ("v_r_spread", "v_r_s spread / RMS", 0.05),
    ("style_gain", "style gain", None),
    ("luminance_corr", "luminance corr. with the content", 0.4),
    ("hue_headroom", "hue headroom", None),
    ("style", "Table 1 style (solid) and content (dashed)", None),
)


def parse_runs(items) -> list[tuple[str, str]]:
    runs = []
    for item in items:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = os.path.basename(os.path.dirname(item)) or item, item
        path = os.path.expanduser(path)
        if os.path.isdir(path):
            path = os.path.join(path, evaluation_curve.CURVE_FILE)
        if not os.path.isfile(path):
            raise app.UsageError(f"{path} does not exist (an eval_log.csv or a model_dir)")
        runs.append((label, path))
    return runs


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import matplotlib

    matplotlib.use("Agg")  # No display on a training machine.
    import matplotlib.pyplot as plt

    runs = [
        (
            label,
            [
                r
                for r in evaluation_curve.read_curve(path)
                if r["step"] <= (FLAGS.max_step or r["step"])
            ],
        )
        for label, path in parse_runs(FLAGS.runs)
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), dpi=100)
    for ax, (column, title, threshold) in zip(axes.flat, PANELS):
        for i, (label, rows) in enumerate(runs):
            steps = [r["step"] for r in rows]
            colour = f"C{i}"
            ax.plot(steps, [r[column] for r in rows], "o-", ms=3, color=colour, label=label)
            if column == "style":
                ax.plot(steps, [r["content"] for r in rows], "--", color=colour)
        if threshold is not None:
            ax.axhline(threshold, color="grey", lw=0.8, ls=":")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    if FLAGS.title:
        fig.suptitle(FLAGS.title, fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    fig.savefig(FLAGS.output)
    print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
