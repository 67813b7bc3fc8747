"""What the command-line entry points share: a quiet start-up, plain output lines, one flag syntax.

TensorFlow's C++ runtime writes its own lines to the process's stderr while
it loads and probes devices (oneDNN notices, CUDA drivers not found,
`absl::InitializeLog` warnings), before Python's logging is in charge and
whatever `TF_CPP_MIN_LOG_LEVEL` says. `quiet_startup()` imports TensorFlow
and lists its devices with file descriptor 2 pointed at /dev/null, so a
command (even `--help`) opens with its own output; `--verbose` on the
command line keeps them. Call it first in a script, before importing
`exchange_st` modules that import TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys


def wants_verbose(argv=None) -> bool:
    """Whether the command line asks for `--verbose` (any value but 0 / false)."""
    for arg in sys.argv[1:] if argv is None else argv:
        if arg == "--verbose":
            return True
        if arg.startswith("--verbose="):
            return arg.split("=", 1)[1].lower() not in ("0", "false", "")
    return False


@contextlib.contextmanager
def stderr_silenced():
    """Points file descriptor 2 at /dev/null inside the block (C++ writers included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def quiet_startup(argv=None) -> None:
    """Loads TensorFlow (if installed) and probes its devices without its native log lines.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` for what TensorFlow logs later (unless the
    environment sets it). Without TensorFlow (the JAX-only machines) it does
    nothing; a TensorFlow that fails to import is left for the first real
    import to report, with stderr open.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if wants_verbose(argv):
        return
    # A failed import leaves sys.modules as it was, so a machine (or a test)
    # that marks TensorFlow absent with `sys.modules["tensorflow"] = None`
    # stays without it.
    # Without TensorFlow, or with a broken one that its first real import
    # reports, there is nothing to silence.
    with contextlib.suppress(Exception), stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()


class PlainFormatter(logging.Formatter):
    """A log record as its message alone; warnings and errors say so first."""

    def format(self, record):
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


def plain_logging(verbose: bool = False) -> None:
    """Prints absl's log lines plainly (`message`, `warning: ...`, `error: ...`).

    The commands' lines are for their user: errors, skipped files, results and
    progress. absl's prefix (level, date, time, thread, file:line) would bury
    them; `--verbose` keeps it, with TensorFlow's own start-up lines.
    """
    from absl import logging as absl_logging

    if not verbose:
        absl_logging.get_absl_handler().setFormatter(PlainFormatter())


def parse_options(items, what="model option") -> dict:
    """`["fusion_rank=4", "code_normalization=l2"]` -> `{"fusion_rank": 4, "code_normalization": "l2"}`.

    The syntax of every command's repeatable `--model_config=key=value`: each
    value is read as JSON where it parses (numbers, booleans, lists), else
    kept as a string.

    Raises:
      ValueError: an item without `=`, naming it.
    """
    options = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} must be key=value")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options
