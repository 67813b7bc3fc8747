r"""Stylization speed of the exchange model vs AdaIN vs the bare VGG encoder, with FLOP efficiency.

Times `stylize` of `ExchangeStyleTransfer` ("efanet") and `AdaINNet`
("adain") in one process on the same random inputs, round-robin, at each
size of `--sizes`: the in-memory Keras model under `tf.function`, its
SavedModel (efanet through `exchange_st.saving.export`, AdaIN through a plain
`tf.Module` export), optionally the un-wrapped eager call, and the bare VGG
encoder to relu4_1 as the reference of achieved GFLOP/s. FLOPs come from
`exchange_st.evaluation.flops` (layer shapes), so weights do not matter: random init is
the default.

    python -m bench.inference --sizes=256,512,1024
    python -m bench.inference --sizes=512 --profile_dir=bench_out/profile

Each call is timed by the wall clock (median reported, as the spec asks)
and by this process's CPU seconds, in at least 3 interleaved rounds (efanet,
AdaIN, VGG, ... in turn); each KEY ratio is the median of the per-round
ratios with their range, the load at start, and whether every round meets
the target (a range that straddles it says "inconclusive"). At
`--group_size` (512 by default) one efanet stylization is also timed per op
group against its FLOP share (`bench.op_groups`). On a CPU shared with other jobs the wall
clock measures their load as much as the model; the CPU-time ratios are the
ones to trust there (on a GPU, use the wall clock). The key ratios are the
last lines printed, with each size's latencies next to the paper's Table 2.

On JAX (`KERAS_BACKEND=jax`, no TensorFlow needed) "function" is `jax.jit`
with the weights passed in as arguments, "eager" runs op by op, and a call
is timed until its result is ready on the device (no copy to the host);
there are no SavedModels. A GPU run of Table 2:

    KERAS_BACKEND=jax python -m bench.inference --sizes=256,512,1024 \
        --mixed_precision=mixed_bfloat16 --savedmodel_max_size=0 --eager_max_size=0
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import keras
from absl import app, flags, logging

from bench import common, op_groups
from bench.inference_report import (
    MODELS,
    group_lines,
    summary_lines,
)
from exchange_st.baselines.adain import AdaINNet
from exchange_st.evaluation import flops as flops_lib
from exchange_st.nn.model import ExchangeStyleTransfer

try:  # SavedModels need TensorFlow; without it (JAX only) they are not timed.
    from exchange_st.saving import export as export_lib
except ImportError:
    export_lib = None


@dataclasses.dataclass
class InferenceBenchConfig:
    """What `run` measures.

    Attributes:
      sizes: square content sides.
      style_size: square style side; 0 = the content side.
      batch: images per call.
      warmup: untimed rounds per size.
      repeats: maximum timed rounds per size (the median is reported).
      budget_s: seconds of timed rounds per size after which no new round
        starts, once `min_rounds` have run.
      min_rounds: timed rounds per size whatever the budget.
      vgg_weights: VGG weights (None = random; FLOPs and speed do not depend on them).
      device: TF device; "" = first GPU, else CPU (JAX: its default device).
      xla: `jit_compile=True` for the `tf.function`s (JAX always compiles).
      mixed_precision: "none", "mixed_float16" or "mixed_bfloat16".
      savedmodel_max_size: largest size at which the SavedModels are timed
        (0 = never; TensorFlow only); they double the run time.
      eager_max_size: largest size at which the un-wrapped eager `stylize`
        is timed (0 = never).
      profile_dir: if set, trace one efanet stylization at `profile_size`
        there and print the op types by time.
      profile_size: content side of the profiled stylization.
      group_size: content side at which one efanet stylization is timed per
        op group (`bench.op_groups`); 0 = not at all.
      output: JSON report path.
      seed: seed of weights and inputs.
    """

    sizes: tuple[int, ...] = (256, 512, 1024, 2048)
    style_size: int = 0
    batch: int = 1
    warmup: int = 1
    repeats: int = 5
    budget_s: float = 60.0
    min_rounds: int = 3
    vgg_weights: str | None = None
    device: str = ""
    xla: bool = False
    mixed_precision: str = "none"
    savedmodel_max_size: int = 1024
    eager_max_size: int = 512
    profile_dir: str = ""
    profile_size: int = 512
    group_size: int = 512
    output: str = "bench_out/inference.json"
    seed: int = 0


def _adain_savedmodel(model, export_dir):
    """Exports `AdaINNet.stylize` for any image size, like `export.StylizeModule` does."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    module = tf.Module()
    module.model = model
    module.stylize = tf.function(
        lambda content, style: model.stylize(content, style), input_signature=[spec, spec]
    )
    tf.saved_model.save(module, export_dir)
    return tf.saved_model.load(export_dir)


def build_functions(cfg: InferenceBenchConfig, workdir: str) -> tuple[dict, dict, dict]:
    """Builds the models and the callables to time.

    Returns:
      `(models, compiled, notes)`: `models` maps "efanet", "adain", "vgg" to
      the Keras objects (for FLOP counts); `compiled` maps a timing key such
      as "efanet/function" to a callable `(content, style) -> images`;
      `notes` records what could not be timed and why.
    """
    keras.utils.set_random_seed(cfg.seed)
    efanet = ExchangeStyleTransfer(vgg_weights=cfg.vgg_weights)
    efanet.build()
    adain = AdaINNet(vgg_weights=cfg.vgg_weights)
    adain.build()
    encoder = efanet.encoder
    models = {"efanet": efanet, "adain": adain, "vgg": encoder}
    jit = cfg.xla or None
    compile_fn = common.compile_function
    compiled = {
        "efanet/function": compile_fn(lambda c, s: efanet.stylize(c, s), efanet.variables, jit),
        "adain/function": compile_fn(lambda c, s: adain.stylize(c, s), adain.variables, jit),
        "vgg/function": compile_fn(
            lambda c, s: encoder(c, output_all=False), encoder.variables, jit
        ),
        "efanet/eager": lambda c, s: efanet.stylize(c, s),
        "adain/eager": lambda c, s: adain.stylize(c, s),
    }
    notes = {}
    if cfg.savedmodel_max_size > 0 and common.backend() != "tensorflow":
        notes["savedmodels"] = f"not timed: SavedModels need TensorFlow ({common.backend()})"
    elif cfg.savedmodel_max_size > 0:
        import tensorflow as tf

        if export_lib is not None and hasattr(export_lib, "export_saved_model"):
            path = os.path.join(workdir, "efanet")
            export_lib.export_saved_model(efanet, path)
            loaded = tf.saved_model.load(path)
            one = tf.constant(1.0)
            compiled["efanet/savedmodel"] = lambda c, s: loaded.stylize(c, s, one)
            notes["efanet/savedmodel"] = (
                "exchange_st.saving.export.export_saved_model, loaded.stylize"
            )
        else:
            notes["efanet/savedmodel"] = "exchange_st.saving.export not available: not timed"
        loaded_adain = _adain_savedmodel(adain, os.path.join(workdir, "adain"))
        compiled["adain/savedmodel"] = lambda c, s: loaded_adain.stylize(c, s)
        notes["adain/savedmodel"] = "tf.Module with a dynamic-shape tf.function (bench-local)"
    return models, compiled, notes


def _keys_for_size(cfg, compiled, size):
    keys = ["efanet/function", "adain/function", "vgg/function"]
    if size <= cfg.savedmodel_max_size:
        keys += [k for k in ("efanet/savedmodel", "adain/savedmodel") if k in compiled]
    if size <= cfg.eager_max_size:
        keys += ["efanet/eager", "adain/eager"]
    return keys


def measure_size(cfg, models, compiled, size) -> dict:
    """Times every function at one size; returns the JSON record of that size."""
    s_size = cfg.style_size or size
    content = common.random_images([cfg.batch, size, size, 3], cfg.seed + 1)
    style = common.random_images([cfg.batch, s_size, s_size, 3], cfg.seed + 2)
    counts = {
        "efanet": flops_lib.count_flops(models["efanet"], content.shape, style.shape),
        "adain": flops_lib.count_flops(models["adain"], content.shape, style.shape),
        "vgg": flops_lib.count_flops(models["vgg"], content.shape, None),
    }
    keys = _keys_for_size(cfg, compiled, size)
    fns = {k: (lambda f=compiled[k]: f(content, style)) for k in keys}
    logging.info("size %d: timing %s", size, ", ".join(keys))
    timings = common.time_interleaved(fns, cfg.warmup, cfg.repeats, cfg.budget_s, cfg.min_rounds)
    record = {"size": size, "style_size": s_size, "batch": cfg.batch, "runs": {}}
    for key in keys:
        model = key.split("/")[0]
        t = timings[key]
        gflop = counts[model].total / 1e9
        record["runs"][key] = dict(
            t.to_dict(),
            gflop=gflop,
            gflops_per_s=gflop / t.median,
            gflops_per_cpu_s=gflop / t.cpu_median,
        )
    record["flops"] = {m: dict(c.parts, total=c.total) for m, c in counts.items()}
    runs = record["runs"]
    for mode in ("function", "savedmodel", "eager"):
        e, a = runs.get(f"efanet/{mode}"), runs.get(f"adain/{mode}")
        if e and a:
            flop_ratio = e["gflop"] / a["gflop"]
            time_ratio = e["median_s"] / a["median_s"]
            cpu_ratio = e["cpu_median_s"] / a["cpu_median_s"]
            record[f"ratios/{mode}"] = {
                "flops_efanet_over_adain": flop_ratio,
                "time_efanet_over_adain": time_ratio,
                "time_ratio_over_flop_ratio": time_ratio / flop_ratio,
                "cpu_time_efanet_over_adain": cpu_ratio,
                "cpu_time_ratio_over_flop_ratio": cpu_ratio / flop_ratio,
            }
    vgg = runs["vgg/function"]
    # Per-round figures: round i of each function ran back to back, so their
    # spread shows how far the medians can be trusted.
    flop_ratio = counts["efanet"].total / counts["adain"].total
    e, a, v = (timings[f"{m}/function"] for m in ("efanet", "adain", "vgg"))
    record["rounds/function"] = {
        "time_ratio_over_flop_ratio": [r / flop_ratio for r in common.round_ratios(e, a)],
        "efanet_efficiency_vs_vgg": [
            (counts["efanet"].total / te) / (counts["vgg"].total / tv)
            for te, tv in zip(e.times, v.times)
        ],
    }
    record["efficiency_vs_vgg"] = {
        m: runs[f"{m}/function"]["gflops_per_s"] / vgg["gflops_per_s"] for m in MODELS
    }
    record["cpu_efficiency_vs_vgg"] = {
        m: runs[f"{m}/function"]["gflops_per_cpu_s"] / vgg["gflops_per_cpu_s"] for m in MODELS
    }
    return record


def profile(cfg, compiled, logdir) -> list[dict]:
    """Traces one efanet stylization; returns the op types by time (TensorFlow; JAX: [])."""
    size = cfg.profile_size
    content = common.random_images([cfg.batch, size, size, 3], cfg.seed + 1)
    style = common.random_images([cfg.batch, size, size, 3], cfg.seed + 2)
    fn = compiled["efanet/function"]
    common.materialize(fn(content, style))  # trace outside the profile
    common.trace(logdir, lambda: fn(content, style))
    if common.backend() != "tensorflow":
        return []  # The trace is in logdir (TensorBoard's profile plugin reads it).
    return common.profile_op_summary(logdir)


def run(cfg: InferenceBenchConfig) -> dict:
    """Runs the benchmark, prints the table and key ratios, writes the JSON report."""
    load = common.print_load("start")
    common.set_precision(cfg.mixed_precision)
    device = common.select_device(cfg.device)
    report = {
        "config": dataclasses.asdict(cfg),
        "environment": dict(common.environment(device), load_average_start=load),
    }
    records = []
    with tempfile.TemporaryDirectory() as workdir, common.device_scope(device):
        models, compiled, notes = build_functions(cfg, workdir)
        report["notes"] = notes
        for size in cfg.sizes:
            records.append(measure_size(cfg, models, compiled, size))
            # Written as it goes: a run stopped by a time limit keeps its sizes.
            common.write_json(cfg.output, dict(report, sizes=records))
        if cfg.group_size:
            size = cfg.group_size
            content = common.random_images([cfg.batch, size, size, 3], cfg.seed + 1)
            style = common.random_images([cfg.batch, size, size, 3], cfg.seed + 2)
            logging.info("size %d: timing efanet per op group", size)
            report["groups"] = dict(
                size=size,
                **op_groups.run_groups(
                    models["efanet"],
                    content,
                    style,
                    cfg.warmup,
                    cfg.repeats,
                    cfg.budget_s,
                    cfg.min_rounds,
                    cfg.xla or None,
                ),
            )
            common.write_json(cfg.output, dict(report, sizes=records))
        if cfg.profile_dir:
            report["profile"] = {
                "size": cfg.profile_size,
                "ops": profile(cfg, compiled, cfg.profile_dir),
            }
    report["environment"]["load_average_1m_end"] = common.environment(device).get("load_average_1m")
    report["sizes"] = records
    rows = []
    for r in records:
        for key, run_ in r["runs"].items():
            rows.append(
                [
                    r["size"],
                    key,
                    run_["median_s"],
                    run_["min_s"],
                    run_["cpu_median_s"],
                    len(run_["times_s"]),
                    run_["gflop"],
                    run_["gflops_per_s"],
                    run_["gflops_per_cpu_s"],
                ]
            )
    print(
        common.format_table(
            [
                "size",
                "model/mode",
                "median s",
                "min s",
                "CPU s",
                "n",
                "GFLOP",
                "GFLOP/s",
                "GFLOP/CPU-s",
            ],
            rows,
        )
    )
    for r in records:
        for mode in ("function", "savedmodel", "eager"):
            ratios = r.get(f"ratios/{mode}")
            if ratios:
                print(
                    f"size {r['size']} {mode}: efanet/adain time ratio "
                    f"{ratios['time_efanet_over_adain']:.3f}, CPU-time ratio "
                    f"{ratios['cpu_time_efanet_over_adain']:.3f}, FLOP ratio "
                    f"{ratios['flops_efanet_over_adain']:.3f}"
                )
    for note_key, note in notes.items():
        print(f"note {note_key}: {note}")
    if "profile" in report:
        print(
            f"profile of one efanet stylization at {cfg.profile_size} in {cfg.profile_dir} "
            "(op type, ms, share):"
        )
        for op in report["profile"]["ops"][:15]:
            print(f"  {op['op']:<32} {op['ms']:9.1f} ms  {100 * op['share']:5.1f}%  x{op['count']}")
    if "groups" in report:
        print(op_groups.format_groups(report["groups"], cfg.group_size))
    precision = "float32" if cfg.mixed_precision == "none" else cfg.mixed_precision
    print(f"backend {common.backend()}, device {device}")
    common.print_load("end")
    lines = summary_lines(records, precision, load)
    if "groups" in report:
        lines += group_lines(report["groups"], cfg.group_size)
    report["key_lines"] = lines
    common.write_json(cfg.output, report)
    print("\n".join(lines))
    return report


FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["256", "512", "1024", "2048"], "Square content sides to time.")
flags.DEFINE_integer("style_size", 0, "Square style side; 0 = same as the content.")
flags.DEFINE_integer("batch", 1, "Images per call.")
flags.DEFINE_integer("warmup", 1, "Untimed rounds per size.")
flags.DEFINE_integer("repeats", 5, "Maximum timed rounds per size (median reported).")
flags.DEFINE_float("budget_s", 60.0, "Seconds of timed rounds per size before stopping early.")
flags.DEFINE_integer("min_rounds", 3, "Timed rounds per size whatever the budget.")
flags.DEFINE_string("vgg_weights", None, "VGG-19 notop h5 path; default random (same FLOPs).")
flags.DEFINE_string("device", "", "TF device, e.g. /CPU:0 or /GPU:0; default GPU if present.")
flags.DEFINE_bool("xla", False, "Compile the tf.functions with XLA; JAX always compiles.")
flags.DEFINE_enum("mixed_precision", "none", list(common.PRECISIONS), "Keras dtype policy.")
flags.DEFINE_integer("savedmodel_max_size", 1024, "Largest size at which SavedModels are timed.")
flags.DEFINE_integer("eager_max_size", 512, "Largest size at which eager stylize is timed.")
flags.DEFINE_string("profile_dir", "", "Trace one efanet stylization into this directory.")
flags.DEFINE_integer("profile_size", 512, "Content side of the profiled stylization.")
flags.DEFINE_integer("group_size", 512, "Side at which efanet is timed per op group; 0 = never.")
flags.DEFINE_string("output", "bench_out/inference.json", "JSON report path.")
flags.DEFINE_integer("seed", 0, "Seed of weights and inputs.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cfg = InferenceBenchConfig(
        sizes=tuple(int(s) for s in FLAGS.sizes),
        style_size=FLAGS.style_size,
        batch=FLAGS.batch,
        warmup=FLAGS.warmup,
        repeats=FLAGS.repeats,
        budget_s=FLAGS.budget_s,
        min_rounds=FLAGS.min_rounds,
        vgg_weights=FLAGS.vgg_weights,
        device=FLAGS.device,
        xla=FLAGS.xla,
        mixed_precision=FLAGS.mixed_precision,
        savedmodel_max_size=FLAGS.savedmodel_max_size,
        eager_max_size=FLAGS.eager_max_size,
        profile_dir=FLAGS.profile_dir,
        profile_size=FLAGS.profile_size,
        group_size=FLAGS.group_size,
        output=FLAGS.output,
        seed=FLAGS.seed,
    )
    run(cfg)


if __name__ == "__main__":
    app.run(main)
