r"""How the style image's size changes a stylization: the evidence for `--style_size`.

    python -m bench.style_size --content=../shared/images/content/brad_pitt.jpg \
        --style=../shared/images/style/la_muse.jpg --content_size=1024 \
        --style_sizes=256,512,768,1024 --output=bench_out/style_size.json

The content is loaded with its longer side at `--content_size` (the CLI's
`--max_size`), the style at each of `--style_sizes` (longer side), and the
pretrained release (or `--checkpoint_dir`) stylizes the pair. For each size it
prints Table 1's content and Gram style losses (`evaluation.metrics`, at the
output's size) against two style references, the style as fed and the style at
the content's size (the old behaviour: the style capped at `--max_size`), the
median time over `--rounds` interleaved rounds, and writes a strip of the
outputs next to the JSON (content | style | one output per size).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from bench import common  # noqa: E402
from exchange_st.data import image_io  # noqa: E402
from exchange_st.evaluation import metrics  # noqa: E402
from exchange_st.inference import stylizer as stylizer_lib  # noqa: E402
from exchange_st.nn.vgg import VGGEncoder  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("content_size", 1024, "Longer side of the content (the CLI's --max_size).")
flags.DEFINE_list("style_sizes", ["256", "512", "768", "1024"], "Longer sides of the style.")
flags.DEFINE_string("checkpoint_dir", None, "A run or weights file; unset: the pretrained release.")
flags.DEFINE_string(
    "metric_vgg",
    None,
    "VGG h5 of the metric (Table 1's encoder); unset: the release's own VGG file.",
)
flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds.")
flags.DEFINE_string("output", "bench_out/style_size.json", "JSON output; the strip PNG beside it.")
flags.mark_flags_as_required(["content", "style"])


def _metric_vgg():
    if FLAGS.metric_vgg:
        return FLAGS.metric_vgg
    from exchange_st.saving import release

    manifest = release.read_manifest(release.default_path())
    return os.path.join(release.default_path(), manifest["vgg"]["file"])


def main(argv):
    del argv
    stylizer = stylizer_lib.load_stylizer(checkpoint_dir=FLAGS.checkpoint_dir)
    encoder = VGGEncoder(_metric_vgg(), name="metric_vgg")
    content = image_io.load_image(FLAGS.content, max_size=FLAGS.content_size, role="content")
    sizes = [int(s) for s in FLAGS.style_sizes]
    styles = {n: image_io.load_image(FLAGS.style, max_size=n, role="style") for n in sizes}
    # The style at the content's size: what --max_size alone fed the model.
    reference = image_io.load_image(FLAGS.style, max_size=FLAGS.content_size, role="style")
    outputs, seconds = {}, {n: [] for n in sizes}
    stylizer.stylize(content, styles[sizes[0]])  # warm-up: the trace
    start_load = os.getloadavg()[0]
    for _ in range(FLAGS.rounds):
        for n in sizes:
            start = time.perf_counter()
            outputs[n] = stylizer.stylize(content, styles[n])
            seconds[n].append(time.perf_counter() - start)
    rows = []
    for n in sizes:
        out = outputs[n][None]
        fed = metrics.perceptual_loss(encoder, out, content[None], styles[n][None])
        ref = metrics.perceptual_loss(encoder, out, content[None], reference[None])
        rows.append(
            {
                "style_size": n,
                "style_shape": list(styles[n].shape[:2]),
                "content": fed["content"],
                "style_vs_fed": fed["style"],
                "style_vs_content_size": ref["style"],
                "seconds": dict(zip(("median", "low", "high"), common.spread(seconds[n]))),
            }
        )
        print(
            f"style {n:5d} px: content {fed['content']:.3f}  style vs fed {fed['style']:.3f}  "
            f"style vs style at {FLAGS.content_size} {ref['style']:.3f}  "
            f"{rows[-1]['seconds']['median']:.2f} s ({rows[-1]['seconds']['low']:.2f}-"
            f"{rows[-1]['seconds']['high']:.2f})"
        )
    result = {
        "content": FLAGS.content,
        "style": FLAGS.style,
        "content_shape": list(content.shape[:2]),
        "rounds": FLAGS.rounds,
        "load_at_start": start_load,
        "rows": rows,
    }
    common.write_json(FLAGS.output, result)
    strip = [content, image_io.resize_array(reference, content.shape[:2])]
    strip += [np.clip(outputs[n], 0, 1) for n in sizes]
    image_io.save_image(
        os.path.splitext(FLAGS.output)[0] + ".png", image_io.make_grid([strip], height=256)
    )


if __name__ == "__main__":
    app.run(main)
