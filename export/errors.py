"""Errors of har_export, one small module: plain exceptions whose message is the one line a user
sees. Only `har_export.cli` turns them into exit codes (through `har_runtime.exit_codes`)."""
from __future__ import annotations


class ExportError(Exception):
    """Base class of the export library's errors."""


class OptionError(ExportError):
    """Options that cannot work together or values out of range (exit code BAD_INPUT)."""


class InputError(ExportError):
    """A model, run folder or bundle that is missing, corrupt or inconsistent (BAD_MODEL)."""


class ConversionError(ExportError):
    """The TFLite converter refused the model, e.g. an op with no TFLite builtin kernel."""
