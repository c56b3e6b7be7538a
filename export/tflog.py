"""Keep TensorFlow's native logging (absl, MLIR, the TFLite converter) off the terminal.

The converter logs from C++ straight to file descriptor 2 ("Ignored output_format", "MLIR V1
optimization pass is not enabled", "fully_quantize: 0, ..."): neither sys.stderr redirection
nor Python logging levels reach it, so `native_logs_captured` swaps fd 2 itself (and sys.stderr)
for a temporary file while it runs, and shows that file's tail only when the block fails.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager, redirect_stderr
from typing import IO, Iterator, List

#: Lines of captured native log shown when a captured block fails.
TAIL_LINES = 20
#: TensorFlow's C++ log threshold: 2 hides INFO and WARNING, errors still print.
QUIET_TF_CPP_LEVEL = "2"
_PYTHON_LOGGERS = ("absl", "tensorflow")


def quiet_tensorflow_env() -> None:
    """Before TensorFlow loads: hide its C++ INFO/WARNING logs, unless the user chose a level."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_LEVEL)


def log_tail(text: str, lines: int = TAIL_LINES) -> List[str]:
    """The last `lines` non-blank lines of `text`."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-lines:]


@contextmanager
def _python_loggers_at_error() -> Iterator[None]:
    """absl's and TensorFlow's Python loggers at ERROR for the block (their levels restored)."""
    loggers = [logging.getLogger(name) for name in _PYTHON_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before):
            logger.setLevel(level)


def _show_tail(log: IO[bytes]) -> None:
    log.seek(0)
    tail = log_tail(log.read().decode("utf-8", "replace"))
    if tail:
        sys.stderr.write(f"converter log (last {len(tail)} lines; --verbose shows it all):\n")
        sys.stderr.write("".join(f"  {line}\n" for line in tail))
        sys.stderr.flush()


@contextmanager
def native_logs_captured(verbose: bool = False) -> Iterator[None]:
    """Run the block with fd 2 going to a temporary file; on an exception, print the file's
    last TAIL_LINES lines to stderr, then re-raise. `verbose`: capture nothing."""
    if verbose:
        yield
        return
    sys.stderr.flush()  # text Python buffered for the real stderr must not land in the file
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (a daemonised caller): nothing to keep off it
        yield
        return
    try:
        with tempfile.TemporaryFile() as log:
            os.dup2(log.fileno(), 2)
            try:
                # sys.stderr too: under a test runner or CliRunner it is not fd 2.
                with _python_loggers_at_error(), open(os.dup(log.fileno()), "w") as text, \
                        redirect_stderr(text):
                    yield
            except BaseException:
                _restore_fd2(saved)
                _show_tail(log)
                raise
            else:
                _restore_fd2(saved)
    finally:
        os.close(saved)


def _restore_fd2(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
