r"""Stylization time of a trained EFANet on JAX, next to the paper's Table 2.

    KERAS_BACKEND=jax python -m tools.jax_timing --model=pretrained/efanet \
        --sizes=256,512,1024 --precisions=float32,mixed_bfloat16

`model.stylize` of one square content/style pair per size, jit-compiled
(weights passed as arguments through a `keras.StatelessScope`), timed after
`--warmup` calls as the median of `--runs` calls, each waited for with
`block_until_ready`. The paper's Table 2 (Titan Xp): 0.031 / 0.066 / 0.21 s at
256 / 512 / 1024 px. JAX only (the TensorFlow numbers are `eval.py`'s).
"""

import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from exchange_st.nn.model import ExchangeStyleTransfer  # noqa: E402
from exchange_st.saving import checkpoints  # noqa: E402

PAPER_SECONDS = {256: 0.031, 512: 0.066, 1024: 0.21}

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", None, "A release directory, a training model_dir or a .weights.h5 file."
)
flags.DEFINE_list("sizes", ["256", "512", "1024"], "Square image sides.")
flags.DEFINE_list(
    "precisions", ["float32", "mixed_bfloat16"], "Keras dtype policies the model is built in."
)
flags.DEFINE_integer("warmup", 2, "Untimed calls per size (the first compiles).")
flags.DEFINE_integer("runs", 10, "Timed calls per size; the median is reported.")
flags.mark_flags_as_required(["model"])


def compiled_stylize(model):
    """`(content, style) -> model.stylize(content, style)` as one jitted JAX function."""
    import jax

    variables = model.trainable_variables + model.non_trainable_variables
    values = [v.value for v in variables]

    def stylize(values, content, style):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return model.stylize(content, style)

    compiled = jax.jit(stylize)
    return lambda content, style: compiled(values, content, style)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if keras.backend.backend() != "jax":
        raise app.UsageError("run with KERAS_BACKEND=jax")
    import jax

    print(f"devices {jax.devices()}", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    for precision in FLAGS.precisions:
        keras.config.set_dtype_policy(precision)
        model = checkpoints.load_model(FLAGS.model, expect=ExchangeStyleTransfer)
        stylize = compiled_stylize(model)
        for size in (int(s) for s in FLAGS.sizes):
            content = rng.uniform(size=(1, size, size, 3)).astype(np.float32)
            style = rng.uniform(size=(1, size, size, 3)).astype(np.float32)
            start = time.perf_counter()
            for _ in range(FLAGS.warmup):
                stylize(content, style).block_until_ready()
            first = time.perf_counter() - start
            times = []
            for _ in range(FLAGS.runs):
                start = time.perf_counter()
                stylize(content, style).block_until_ready()
                times.append(time.perf_counter() - start)
            rows.append((precision, size, statistics.median(times), first))
            print(
                f"{precision} {size}: median {rows[-1][2]:.4f} s ({FLAGS.runs} runs; "
                f"warm-up incl. compile {first:.1f} s)",
                flush=True,
            )
    keras.config.set_dtype_policy("float32")
    print("| precision | size | seconds (median) | paper, Titan Xp |")
    print("|---|---|---|---|")
    for precision, size, seconds, _ in rows:
        paper = PAPER_SECONDS.get(size)
        print(f"| {precision} | {size} | {seconds:.4f} | {paper if paper else '-'} |")


if __name__ == "__main__":
    app.run(main)
