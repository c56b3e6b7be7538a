"""Errors of har_train, one small module: plain exceptions whose message is the one line a user
sees. Only `har_train.cli` turns them into exit codes (through `har_runtime.exit_codes`)."""
from __future__ import annotations


class DataError(ValueError):
    """Training data that is missing, unreadable or malformed; the message says which and why."""


class ConfigError(ValueError):
    """Training options that cannot work together (message names the option)."""


class RunExistsError(FileExistsError):
    """The output folder already holds files and overwriting was not asked for."""


class ModelError(ValueError):
    """An unknown model name, bad option or bad normalisation statistics."""


class SplitError(ValueError):
    """Subject sets that overlap or leave a side empty."""
