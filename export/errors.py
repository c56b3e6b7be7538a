"""Errors of har-export, each a click exception with its own exit code (see `har-export --help`).

Library functions raise these too: the message is the one line a user sees, and the CLI maps
the class to the exit code without any translation layer.
"""
from __future__ import annotations

import click

#: Exit codes, one place: the CLI help, docs/EXPORT.md and the tests read them from here.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARITY = 3
EXIT_INPUT = 4
EXIT_CONVERSION = 5


class ExportError(click.ClickException):
    """Base class; the exit code says which kind of failure it was."""

    exit_code = EXIT_USAGE


class OptionError(ExportError):
    """Options that cannot work together or values out of range (like click's usage errors)."""

    exit_code = EXIT_USAGE


class InputError(ExportError):
    """A model, run folder or bundle that is missing, corrupt or inconsistent."""

    exit_code = EXIT_INPUT


class ConversionError(ExportError):
    """The TFLite converter refused the model (e.g. an op with no TFLite builtin kernel)."""

    exit_code = EXIT_CONVERSION


class ParityFailure(ExportError):
    """At least one variant failed the accuracy-parity gate (it is written, not deployable)."""

    exit_code = EXIT_PARITY
