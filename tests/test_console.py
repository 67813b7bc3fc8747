"""Command-line start-up: only the project's lines, TensorFlow's native ones with --verbose."""

import json
import logging
import os
import re
import subprocess
import sys

import pytest

from exchange_st import console

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What TensorFlow's C++ runtime prints before Python logging is in charge.
NATIVE_LINE = re.compile(r"^([IWEF]0000 |WARNING: All log messages before absl::InitializeLog)")


def _run(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    return proc, [line for line in lines if NATIVE_LINE.match(line)]


def test_help_opens_with_the_commands_own_lines():
    # The README walk checks every command's real runs (tests/test_readme.py).
    proc, native = _run("train.py", "--help")
    assert "USAGE" in proc.stdout or "flags:" in proc.stdout, proc.stderr[-2000:]
    assert native == []


def test_verbose_keeps_them_and_still_runs():
    assert console.wants_verbose(["--verbose"]) and console.wants_verbose(["--verbose=2"])
    assert not console.wants_verbose(["--verbose=0"]) and not console.wants_verbose(["--x"])
    proc, _ = _run("eval.py", "--help", "--verbose")
    assert "flags:" in proc.stdout


def test_stderr_silenced_restores_the_descriptor(capfd):
    with console.stderr_silenced():
        os.write(2, b"hidden\n")
    os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"


def test_quiet_startup_keeps_tensorflow_absent_where_it_is_marked_absent(monkeypatch):
    # The JAX-only tests mark TensorFlow absent this way; loading it anyway
    # would hide the no-TensorFlow code paths they test.
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    console.quiet_startup([])
    assert sys.modules["tensorflow"] is None


# Each command's module, imported (not run) in a fresh process, parses the same spellings.
_PARSE_SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
sys.argv = ["prog"]
from absl import flags
{define}
FLAGS = flags.FLAGS
out = {{}}
for name, argv in {spellings!r}.items():
    FLAGS.unparse_flags()
    FLAGS(["prog", *{required!r}, *argv])
    out[name] = {{"verbose": FLAGS.verbose, "model_config": getattr(FLAGS, "model_config", None)}}
print("RESULT " + json.dumps(out))
"""
_COMMANDS = {
    "train.py": ("import train", ["--content_source=a", "--style_source=b", "--model_dir=c"]),
    "eval.py": ("import eval", ["--content_dir=a", "--style_dir=b", "--output_dir=c"]),
    "export_savedmodel.py": ("import export_savedmodel", ["--export_dir=a"]),
    "exchange-st-stylize": (
        "from exchange_st.inference import stylize; stylize._define_flags()",
        ["--style=a", "--output_dir=b"],
    ),
}
_SPELLINGS = {
    "bare": ["--verbose"],
    "false": ["--verbose=false"],
    "no": ["--noverbose"],
    "options": ["--model_config=code_dim=8", "--model_config=upsample_filters=[8,8,8]"],
}


@pytest.mark.parametrize("command", list(_COMMANDS))
def test_every_command_reads_verbose_and_model_config_alike(command):
    define, required = _COMMANDS[command]
    spellings = dict(_SPELLINGS)
    if command == "eval.py":  # Its models come from checkpoints with their configs.
        del spellings["options"]
    script = _PARSE_SCRIPT.format(repo=REPO, define=define, spellings=spellings, required=required)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    assert out["bare"]["verbose"] is True
    assert out["false"]["verbose"] is False and out["no"]["verbose"] is False
    if "options" in out:
        options = console.parse_options(out["options"]["model_config"])
        assert options == {"code_dim": 8, "upsample_filters": [8, 8, 8]}


def test_plain_logging_prints_the_message_and_names_warnings_and_errors():
    formatter = console.PlainFormatter()

    def line(level, message):
        return formatter.format(logging.LogRecord("absl", level, "f.py", 1, message, (), None))

    assert line(logging.INFO, "step 10/20  loss 1.5") == "step 10/20  loss 1.5"
    assert line(logging.WARNING, "skipped a.png") == "warning: skipped a.png"
    assert line(logging.ERROR, "/x/empty.png (content) is empty (0 bytes).") == (
        "error: /x/empty.png (content) is empty (0 bytes)."
    )
