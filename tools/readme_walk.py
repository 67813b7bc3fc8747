r"""Runs every command of README.md, in order, as a newcomer would: the README walk.

    python -m tools.readme_walk                  # tiny settings, a scratch folder
    python -m tools.readme_walk --list           # what it would do with each command

Each shell command of README's ```bash blocks and each ```python block runs
in a scratch folder that looks like a checkout beside `../shared`: the
project's scripts, configs and `bench/`, and a `../shared` of generated
images with a random-weight VGG-19 file under the real file names. What a
command writes (`runs/cpu_preview`, `exports/efanet`, ...) is there for the
commands after it, as it is for a reader. Tiny settings keep the walk to
minutes on two CPU cores: train.py gets 2 steps at 32 px, eval.py 32 px
pairs and one timing size, benchmarks their smallest sizes, and the
placeholders of the examples (`/path/content`, `/data/places`, `runs/X`,
`[--optional flags]`) become the scratch folder's files.

`RULES` decides, for every command, whether it runs and with which extra
flags, or why it does not (installs, the test suite itself, the GPU
machine's scripts, a viewer); a command that no rule names fails the walk,
so a new README example is walked from the day it is written. Commands that
use the pretrained model must stop with one sentence while no release ships
(`pretrained/efanet/` absent) and must succeed once it does.

Exit status 1 when any command did not do what its rule expects; the table
printed at the end lists every command with its outcome and seconds.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
# What the scratch checkout links from the repository.
LINKED = ("train.py", "eval.py", "export_savedmodel.py", "configs", "bench", "tools", "exchange_st")
# Linked too when the repository has it: the shipped release (`--init_from=pretrained/efanet`).
LINKED_IF_PRESENT = ("pretrained",)
# The scratch `../shared` (generated images and a random VGG), beside the folder
# the commands run in, as the real one is beside a checkout.
SHARED = "shared"
VGG_FILES = ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg19_to_relu4_1_float16.h5")

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
    Rule(r"^PYTHON_BLOCK.*from_pretrained\(", pretrained=True),
    Rule(r"^PYTHON_BLOCK"),
)

# What a Python block of README may use without defining it.
PYTHON_PREAMBLE = """\
import numpy as np
_rng = np.random.default_rng(0)
content = _rng.uniform(size=(1, 40, 48, 3)).astype("float32")
style = _rng.uniform(size=(1, 32, 32, 3)).astype("float32")
mask = np.zeros((1, 40, 48, 1), "float32"); mask[:, :, :24] = 1.0
"""


@dataclasses.dataclass
class Command:
    """One README command: its text as written and how the walk runs it."""

    text: str
    python: bool = False

    @property
    def shown(self) -> str:
        first = self.text.splitlines()[0] if self.python else self.text
        return first if len(first) <= 90 else first[:87] + "..."


def load_readme_commands() -> list[Command]:
    """The commands of this repository's README.md."""
    with open(README, encoding="utf-8") as f:
        return readme_commands(f.read())


def readme_commands(text: str) -> list[Command]:
    """README's commands in order: each `&&` step of a bash line, each Python block whole."""
    commands = []
    for lang, body in re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S):
        if lang == "python":
            commands.append(Command(body.strip(), python=True))
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = _strip_comment(line).strip()
            for step in filter(None, (s.strip() for s in line.split("&&"))):
                commands.append(Command(" ".join(step.split())))
    return commands


def _strip_comment(line: str) -> str:
    """The line without its trailing `# ...` comment (a `#` after a space, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def match_rule(command: Command) -> Rule | None:
    key = f"PYTHON_BLOCK {command.text}" if command.python else command.text
    return next((r for r in RULES if re.search(r.pattern, key, flags=re.S)), None)


def substitute(text: str) -> str:
    for placeholder, value in PLACEHOLDERS:
        text = text.replace(placeholder, value)
    return re.sub(r"\s\[[^\]]*\]", "", text)  # [--optional flags]


def make_scratch(root: str) -> str:
    """The scratch checkout under `root`; returns the folder commands run in."""
    import numpy as np
    from PIL import Image

    work = os.path.join(root, "repo")
    os.makedirs(work)
    for name in LINKED + tuple(
        n for n in LINKED_IF_PRESENT if os.path.exists(os.path.join(REPO, n))
    ):
        os.symlink(os.path.join(REPO, name), os.path.join(work, name))
    shared = os.path.join(root, SHARED)
    rng = np.random.default_rng(0)

    def picture(path, height, width):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
        base = np.stack([np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in range(3)], -1)
        pixels = 0.5 + 0.35 * base + 0.1 * rng.standard_normal((height, width, 3))
        Image.fromarray(np.uint8(255 * np.clip(pixels, 0, 1))).save(path)

    names = {
        "images/content": ["brad_pitt.jpg", "golden_gate.jpg"],
        "images/style": ["la_muse.jpg", "sketch.png"],
        "data/train/content": [f"c{i}.jpg" for i in range(4)],
        "data/train/style": [f"s{i}.jpg" for i in range(4)],
    }
    for folder, files in names.items():
        for i, name in enumerate(files):
            picture(os.path.join(shared, folder, name), 48 + 8 * i, 56 - 4 * i)
    for folder, files in (("photos", ["p0.jpg", "p1.jpg"]), ("styles", ["a0.jpg", "a1.jpg"])):
        for i, name in enumerate(files):
            picture(os.path.join(work, folder, name), 40 + 8 * i, 48)
    for name in ("photo.jpg", "art.jpg", "a.jpg", "b.jpg"):
        picture(os.path.join(work, name), 40, 48)
    left = np.zeros((40, 48), np.uint8)
    left[:, :24] = 255
    Image.fromarray(left).save(os.path.join(work, "left.png"))
    Image.fromarray(255 - left).save(os.path.join(work, "right.png"))
    _write_clip(
        os.path.join(work, "clip.mp4"), [rng.uniform(0, 255, (32, 48, 3)) for _ in range(3)]
    )
    _write_random_vgg(os.path.join(shared, "weights"))
    # The Python example names the VGG file as if it were in the current folder.
    os.symlink(os.path.join(shared, "weights", VGG_FILES[0]), os.path.join(work, VGG_FILES[0]))
    return work  # `../shared` from here is `shared`.


def _write_clip(path, frames):
    if not importable("imageio"):
        # Without the [video] extra the example must say what to install.
        with open(path, "wb") as f:
            f.write(b"\0" * 64)
        return
    import imageio.v2 as imageio

    imageio.mimwrite(path, [frame.astype("uint8") for frame in frames], fps=8)


def importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _write_random_vgg(folder):
    """Random VGG-19 weights under both file names (block4_conv1 layout, which both load)."""
    os.makedirs(folder, exist_ok=True)
    code = (
        "import sys, keras\n"
        "from exchange_st.nn import vgg\n"
        "keras.utils.set_random_seed(0)\n"
        "encoder = vgg.VGGEncoder(vgg_weights=None)\n"
        "encoder.build((None, 32, 32, 3))\n"
        "for path in sys.argv[1:]:\n"
        "    vgg.write_truncated_weights(encoder, path)\n"
    )
    paths = [os.path.join(folder, name) for name in VGG_FILES]
    subprocess.run([sys.executable, "-c", code, *paths], check=True, capture_output=True)


@dataclasses.dataclass
class Outcome:
    command: Command
    status: str  # "ok", "skipped", "run by a test", "stopped as expected", "FAILED"
    seconds: float = 0.0
    detail: str = ""


def has_release() -> bool:
    return os.path.isfile(os.path.join(REPO, "pretrained", "efanet", "manifest.json"))


def run_command(command: Command, rule: Rule, work: str, env: dict, timeout: float) -> Outcome:
    if rule.skip:
        return Outcome(command, "skipped", detail=rule.skip)
    if rule.covered:
        return Outcome(command, "run by a test", detail=rule.covered)
    if command.python:
        script = PYTHON_PREAMBLE + substitute(command.text) + "\n"
        argv = [sys.executable, "-c", script]
    else:
        line = substitute(command.text) + (f" {rule.extra}" if rule.extra else "")
        argv = ["bash", "-c", line]
    start = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    output = (proc.stdout + proc.stderr).strip()
    last = output.splitlines()[-1] if output else ""
    missing = ""
    if rule.pretrained and not has_release():
        missing, hint = "no release ships", "pretrained"
    elif rule.needs and not importable(rule.needs):
        missing, hint = f"{rule.needs} is not installed", "pip install"
    if missing:
        # A CLI says it without a traceback (eval.py marks the method FAILED
        # and runs the others); Python raises one exception.
        told = hint in (last if command.python else output)
        failed = proc.returncode != 0 or "FAILED" in output
        if failed and told and ("Traceback" not in output or command.python):
            return Outcome(command, "stopped as expected", seconds, last)
        return Outcome(command, "FAILED", seconds, f"{missing}, yet: {output[-1500:]}")
    if proc.returncode != 0:
        return Outcome(command, "FAILED", seconds, output[-3000:])
    noise = [line for line in output.splitlines() if NATIVE_NOISE.search(line)]
    if noise and not command.python:
        return Outcome(command, "FAILED", seconds, "TensorFlow's native lines: " + noise[0])
    if rule.expect and rule.expect not in output:
        return Outcome(command, "FAILED", seconds, f"no {rule.expect!r} in: {output[-1500:]}")
    return Outcome(command, "ok", seconds)


# TensorFlow's C++ start-up lines, which the commands hide unless --verbose.
NATIVE_NOISE = re.compile(
    r"oneDNN custom operations|cuda_platform\.cc|absl::InitializeLog|cudart_stub"
)


def walk(work: str, timeout: float = 600.0, log=print) -> list[Outcome]:
    """Runs README's commands in `work` (from `make_scratch`); one Outcome each, in order.

    Two lanes share the CPU: the benchmark commands (`python -m bench.*`)
    and the paper-recipe training commands (`configs/paper.cfg`, on
    TensorFlow then JAX: its run is read by no other command) beside the
    rest, each lane in README order, so that the lanes take about as long; a benchmark that reads `runs/` waits until every other train.py
    command has run. Most of a tiny command's time is single-threaded
    start-up, so the lanes overlap well on two cores.
    """
    commands = load_readme_commands()
    # As a newcomer's shell: no TF_CPP_MIN_LOG_LEVEL, so the walk sees any
    # native start-up line a command fails to hide.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["JAX_PLATFORMS"] = "cpu"
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("EXCHANGE_ST_PRETRAINED", None)
    rules = [match_rule(command) for command in commands]
    side = re.compile(r"-m bench\.|train\.py .*configs/paper\.cfg")
    bench = [i for i, c in enumerate(commands) if side.search(c.text)]
    main = [i for i in range(len(commands)) if i not in bench]
    last_train = max((i for i in main if "train.py " in commands[i].text), default=-1)
    trained = threading.Event()
    outcomes: list[Outcome | None] = [None] * len(commands)
    lock = threading.Lock()

    def run_lane(indices, wait_for_runs=False):
        for i in indices:
            command = commands[i]
            if wait_for_runs and "runs/" in substitute(command.text):
                trained.wait()
            if rules[i] is None:
                outcome = Outcome(
                    command, "FAILED", detail="no rule of tools/readme_walk.py names it"
                )
            else:
                outcome = run_command(command, rules[i], work, env, timeout)
            with lock:
                outcomes[i] = outcome
                log(
                    f"[{i + 1}/{len(commands)}] {outcome.status:<20} {outcome.seconds:6.1f} s  "
                    f"{command.shown}"
                )
                if outcome.status == "FAILED":
                    log(outcome.detail)
            if i == last_train:
                trained.set()
        if last_train < 0:
            trained.set()

    lanes = [
        threading.Thread(target=run_lane, args=(main,)),
        threading.Thread(target=run_lane, args=(bench, True)),
    ]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    return outcomes


FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("workdir", None, "Scratch folder (default: a new temporary one).")
    flags.DEFINE_bool("keep", False, "Keep the scratch folder.")
    flags.DEFINE_bool("list", False, "Print each command with its rule; run nothing.")


def main(argv):
    del argv
    if FLAGS.list:
        for command in load_readme_commands():
            rule = match_rule(command)
            what = "NO RULE" if rule is None else rule.skip or f"run {rule.extra}".strip()
            if rule is not None and rule.covered:
                what = f"run by {rule.covered}"
            if rule is not None and rule.pretrained:
                what += " (uses the release: stops in one sentence while none ships)"
            print(f"{command.shown}\n    -> {what}")
        return
    root = FLAGS.workdir or tempfile.mkdtemp(prefix="readme_walk_")
    work = make_scratch(root)
    try:
        outcomes = walk(work)
    finally:
        if not FLAGS.keep and not FLAGS.workdir:
            shutil.rmtree(root, ignore_errors=True)
    failed = [o for o in outcomes if o.status == "FAILED"]
    ran = sum(o.seconds for o in outcomes)
    print(
        f"{len(outcomes)} commands: {len(outcomes) - len(failed)} as expected, "
        f"{len(failed)} failed; {ran:.0f} s running commands."
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    define_flags()
    app.run(main)
