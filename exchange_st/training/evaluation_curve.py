"""The evaluation curve of a run: `learning_report` scores on fixed evaluation images every N steps.

Training losses fall whether or not a model stylizes (the paper's recipe
lowered them and painted one image for every style), so a long run is
followed by what its pictures do: `model_dir/eval_log.csv` gets one row of
`learning_report.CURVE_COLUMNS` per report, `model_dir/images/eval-<N>.png`
the first evaluation content under each evaluation style, and with
TensorFlow the scores also go to TensorBoard as `eval/<name>`. Any backend.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np
from absl import logging

from exchange_st.data import image_io
from exchange_st.evaluation import learning_report
from exchange_st.training import callbacks as cb

CURVE_FILE = "eval_log.csv"


def read_curve(path) -> list[dict]:
    """The rows of an `eval_log.csv`, one per step (a step evaluated twice keeps its last row)."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = {}
        for row in csv.DictReader(f):
            parsed = {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            parsed["step"] = int(parsed["step"])
            rows[parsed["step"]] = parsed
    return [rows[s] for s in sorted(rows)]


def append_row(path, row: dict) -> None:
    """Appends `row` (`learning_report.curve_row`) to the CSV at `path`, writing its header first."""
    new = not os.path.isfile(path) or not os.path.getsize(path)
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=learning_report.CURVE_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, math.nan) for k in learning_report.CURVE_COLUMNS})


def format_row(row: dict) -> str:
    """One log line: the scores a reader checks first."""
    return (
        f"eval step {row['step']}: chroma follow {row['chroma_follow']:.2f} "
        f"(r {row['chroma_r']:.2f}), v_r_s spread {100 * row['v_r_spread']:.1f}%, "
        f"style gain {row['style_gain']:.3f}, luminance corr {row['luminance_corr']:.2f}, "
        f"hue headroom {row['hue_headroom']:.2f}, Table 1 content {row['content']:.3g} "
        f"style {row['style']:.3g} total {row['total']:.3g}"
    )


class EvaluationCurve(cb.StepCallback):
    """Every `every_steps` steps, and at the start of a run whose step has no row yet.

    Args:
      eval_set: `learning_report.EvalSet` (the same images every report).
      model_dir: where `eval_log.csv` and `images/eval-<step>.png` go.
      every_steps: report interval.
      start_step: the restored step.
      tf: the `tensorflow` module for TensorBoard scalars, or None.
      logdir: TensorBoard directory (with `tf`).
    """

    def __init__(self, eval_set, model_dir, every_steps, start_step=0, tf=None, logdir=None):
        super().__init__(start_step)
        self.eval_set, self.every_steps, self.tf = eval_set, every_steps, tf
        self.path = os.path.join(model_dir, CURVE_FILE)
        self.images = os.path.join(model_dir, "images")
        self.writer = tf.summary.create_file_writer(logdir) if tf is not None else None
        self.reported = {row["step"] for row in read_curve(self.path)}

    def on_train_begin(self, logs=None):
        if self.step % self.every_steps == 0 and self.step not in self.reported:
            self.report()

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step % self.every_steps == 0 and self.step not in self.reported:
            self.report()

    def report(self) -> dict:
        # `self.model` (not `_model`): on JAX it syncs the training state first.
        images, scores = learning_report.evaluate(self.model, self.eval_set)
        row = learning_report.curve_row(self.step, scores)
        append_row(self.path, row)
        self.reported.add(self.step)
        picture = learning_report.strip(self.eval_set, images)
        if picture is not None:
            image_io.save_image(os.path.join(self.images, f"eval-{self.step:07d}.png"), picture)
        if self.writer is not None:
            with self.writer.as_default(step=self.step):
                for key, value in row.items():
                    if key != "step" and np.isfinite(value):
                        cb.write_scalar(self.tf, f"eval/{key}", value, self.step)
            self.writer.flush()
        logging.info("%s", format_row(row))
        return row
