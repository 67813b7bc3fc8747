"""Command-line start-up: only the project's lines, TensorFlow's native ones with --verbose."""

import os
import re
import subprocess
import sys

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
