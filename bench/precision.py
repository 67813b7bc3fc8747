r"""bfloat16 against float32 inference of one trained checkpoint: output difference and speed.

Stylizes every (content, style) pair of two image directories with the
`--precision=float32` and `--precision=bfloat16` stylizers of
`exchange-st-stylize` and prints the per-pixel difference (mean absolute
RGB difference of a pixel, in [0, 1] and in 8-bit levels: its mean over all
pixels, and the largest) and the median seconds per pair of each.

    python -m bench.precision --checkpoint_dir=runs/cpu_demo \
        --content_dir=../shared/images/content --style_dir=../shared/images/style --size=512
"""

from __future__ import annotations

import itertools
import statistics
import time

import numpy as np
from absl import app, flags

from bench import common
from exchange_st.data import image_io
from exchange_st.inference import stylizer

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", None, "A train.py model_dir or .weights.h5 file.")
flags.DEFINE_string("content_dir", None, "Content images.")
flags.DEFINE_string("style_dir", None, "Style images.")
flags.DEFINE_integer("size", 512, "Bound of the longer side of every image.")
flags.DEFINE_integer("pairs", 6, "Pairs compared (the first ones of content x style).")
flags.DEFINE_string("output", "bench_out/precision.json", "JSON output path.")
flags.mark_flags_as_required(["checkpoint_dir", "content_dir", "style_dir"])


def main(argv):
    del argv
    contents = image_io.list_images(FLAGS.content_dir)
    styles = image_io.list_images(FLAGS.style_dir)
    pairs = list(itertools.islice(itertools.product(contents, styles), FLAGS.pairs))
    images = {p: image_io.load_image(p, max_size=FLAGS.size) for pair in pairs for p in pair}
    outputs, seconds = {}, {}
    for precision in stylizer.PRECISIONS:
        model = stylizer.load_stylizer(checkpoint_dir=FLAGS.checkpoint_dir, precision=precision)
        model.stylize(images[pairs[0][0]], images[pairs[0][1]])  # Traces the graph.
        outputs[precision], seconds[precision] = [], []
        for content, style in pairs:
            start = time.perf_counter()
            outputs[precision].append(model.stylize(images[content], images[style]))
            seconds[precision].append(time.perf_counter() - start)
    per_pixel = np.concatenate(
        [
            np.abs(b - f).mean(axis=-1).ravel()
            for f, b in zip(outputs["float32"], outputs["bfloat16"])
        ]
    )
    result = {
        "checkpoint_dir": FLAGS.checkpoint_dir,
        "size": FLAGS.size,
        "pairs": len(pairs),
        "mean_abs_per_pixel": float(per_pixel.mean()),
        "max_abs_per_pixel": float(per_pixel.max()),
        "seconds_per_pair": {p: statistics.median(s) for p, s in seconds.items()},
        "environment": common.environment(""),
    }
    result["speedup"] = (
        result["seconds_per_pair"]["float32"] / result["seconds_per_pair"]["bfloat16"]
    )
    common.write_json(FLAGS.output, result)
    print(
        f"bfloat16 vs float32 over {len(pairs)} pairs at <= {FLAGS.size} px: per-pixel mean "
        f"|diff| {result['mean_abs_per_pixel']:.4f} ({255 * result['mean_abs_per_pixel']:.2f}/255), "
        f"max {result['max_abs_per_pixel']:.4f} ({255 * result['max_abs_per_pixel']:.1f}/255); "
        f"seconds per pair {result['seconds_per_pair']['float32']:.2f} (float32) vs "
        f"{result['seconds_per_pair']['bfloat16']:.2f} (bfloat16): {result['speedup']:.2f}x"
    )


if __name__ == "__main__":
    app.run(main)
