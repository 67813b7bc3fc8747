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

from tools.readme_rules import PLACEHOLDERS, RULES, Rule
from tools.readme_scratch import README, REPO, importable, make_scratch

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
