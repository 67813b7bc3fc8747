"""What the README walk does with each README command: run it at tiny settings, or why not."""

from __future__ import annotations

import dataclasses

TRAIN_TINY = (
    "--steps=2 --resize_short_side=32 --crop_size=32 --batch_size=2 --log_every=1 "
    "--summary_every=1 --image_every=2 --checkpoint_every=2 --eval_size=32 --eval_styles=3"
)
# The paper's and AdaIN's configs name data and weights a newcomer downloads first.
TRAIN_LOCAL_DATA = (
    "--content_source=../shared/data/train/content --style_source=../shared/data/train/style "
    "--vgg_weights=../shared/weights/vgg19_to_relu4_1_float16.h5"
)
# The training benchmark's machinery (variants, inputs, rounds, its table)
# with AdaIN's step: tracing EFANet's step took ~30 s of the walk's CPU per
# command, and EFANet trains on both backends in tests/test_train*.py.
TRAIN_STEP_TINY = (
    "--crop_sizes=32 --batch_sizes=2 --steps=2 --rounds=1 --resize_short_side=32 "
    "--pipeline_batches=2 --pipeline_warmup=1 --models=adain"
)
EVAL_TINY = (
    "--size=32 --pairs=2 --timing_sizes=32 --timing_runs=1 --gatys_iterations=2 "
    "--gatys_timing_iterations=1"
)

# Placeholders of the examples -> files of the scratch folder.
PLACEHOLDERS = (
    ("/path/eval/content", "../shared/images/content"),
    ("/path/eval/style", "../shared/images/style"),
    ("/path/content", "../shared/data/train/content"),
    ("/path/style", "../shared/data/train/style"),
    ("/path/photo.jpg", "photo.jpg"),
    ("/path/vgg19_to_relu4_1_float16.h5", "../shared/weights/vgg19_to_relu4_1_float16.h5"),
    ("/data/places", "../shared/data/train/content"),
    ("/data/wikiart", "../shared/data/train/style"),
    ("/data/vgg19_weights", "../shared/weights/vgg19_weights"),
    ("runs/X", "runs/cpu_preview"),
)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What the walk does with the README commands that `pattern` matches (re.search).

    Attributes:
      pattern: regular expression over the command (comments removed).
      skip: why the command does not run; empty when it runs.
      extra: flags appended to the command (tiny settings).
      pretrained: the command uses the shipped release, so it must stop with
        one sentence while `pretrained/efanet/` is absent.
      needs: a module of an optional extra; where it is not installed the
        command must stop saying what to install.
      covered: the test (`tests/file.py::name`) that runs the command's code
        with its own checks; the walk does not run it again.
      expect: text the command's output must contain.
    """

    pattern: str
    skip: str = ""
    extra: str = ""
    pretrained: bool = False
    needs: str = ""
    covered: str = ""
    expect: str = ""


RULES = (
    Rule(r"^python3 -m venv|^\. \.venv/bin/activate$|^pip install", skip="installs: CI's set-up"),
    Rule(r"python -m pytest", skip="the test suite, which runs this walk"),
    Rule(r"^tensorboard ", skip="a viewer that serves until stopped"),
    Rule(r"^python -m http\.server ", skip="a server that serves until stopped"),
    Rule(
        r"^python export_savedmodel\.py .*--web",
        covered="tests/test_web.py::test_the_export_writes_a_page_with_its_model_and_vendored_runtime",
    ),
    Rule(
        r"bench\.web ",
        covered="tests/test_web.py::test_bench_times_each_size_the_page_reports",
    ),
    Rule(
        r"gpu_payload\.sh|gpu_sweep\.sh|gpu_bench\.sh",
        skip="for the CUDA machine (rehearsed on CPU: docs/gpu.md)",
    ),
    Rule(r"train\.py .*configs/(paper|adain)\.cfg", extra=f"{TRAIN_LOCAL_DATA} {TRAIN_TINY}"),
    Rule(r"train\.py .*--init_from=pretrained/", extra=TRAIN_TINY, pretrained=True),
    Rule(
        r"^KERAS_BACKEND=jax python train\.py --flagfile=configs/smoke\.cfg$",
        covered="tests/test_train_jax.py::test_smoke_config_trains_on_jax_without_tensorflow",
    ),
    Rule(r"train\.py ", extra=TRAIN_TINY),
    Rule(r"^exchange-st-stylize (?!.*(--saved_model|--checkpoint_dir))", pretrained=True),
    Rule(r"^python export_savedmodel\.py (?!.*--checkpoint_dir)", pretrained=True),
    Rule(r"^python eval\.py (?!.*--efanet_checkpoint)", extra=EVAL_TINY, pretrained=True),
    Rule(r"^python eval\.py ", extra=EVAL_TINY),
    Rule(r"^exchange-st-stylize .*--video=", needs="imageio"),
    Rule(r"^python export_savedmodel\.py |^exchange-st-stylize "),
    # Tiny sizes and one round; the first inference command also times the
    # SavedModels and the op groups, the others skip them, and the JAX
    # training benchmark times one variant of its four.
    Rule(
        r"bench\.inference --sizes=256,512,1024,2048 ",
        extra="--sizes=32 --warmup=0 --repeats=1 --min_rounds=1 --group_size=32",
    ),
    Rule(
        r"bench\.inference ",
        extra="--sizes=32 --warmup=0 --repeats=1 --min_rounds=1 --group_size=0 "
        "--profile_size=32 --savedmodel_max_size=0",
    ),
    Rule(
        r"KERAS_BACKEND=jax python -m bench\.train_step ",
        extra=f"{TRAIN_STEP_TINY} --precisions=mixed_bfloat16 --input=pipeline",
    ),
    Rule(r"bench\.train_step ", extra=TRAIN_STEP_TINY),
    Rule(r"bench\.memory ", extra="--sizes=64"),
    Rule(r"bench\.precision ", extra="--size=32 --pairs=1"),
    Rule(r"bench\.diagnose ", extra="--crop_size=32 --batch_size=2 --liveness_size=32"),
    Rule(
        r"bench\.learning_check ",
        covered="tests/test_bench.py::"
        "test_learning_check_reports_each_step_and_draws_a_grid_row_per_report",
    ),
    Rule(
        r"bench\.colour_probe ",
        covered="tests/test_bench.py::"
        "test_learning_check_reports_each_step_and_draws_a_grid_row_per_report",
    ),
    Rule(r"bench\.style_statistics ", extra="--crop_sizes=32 --images=2"),
    Rule(r"bench\.style_dependence ", extra="--size=32"),
    Rule(
        r"^PYTHON_BLOCK.*ai_edge_litert",
        covered="tests/test_export.py::test_tflite_falls_back_to_a_fixed_size_model_that_runs_in_litert",
    ),
    Rule(r"^PYTHON_BLOCK.*from_pretrained\(", pretrained=True),
    Rule(r"^PYTHON_BLOCK"),
)

# What a Python block of README may use without defining it.
