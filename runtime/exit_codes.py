"""The one exit-code table of har-train, har-export and har-runtime (docs/CONTRACTS.md).

Library code raises plain exceptions; each CLI maps them to a code here in one place (a
`MappedGroup` with its own `errors` table), so the same kind of failure exits with the same
code from every tool: a malformed CSV file is `BAD_DATA` whether har-train or har-runtime reads it.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Callable, Iterable, Mapping, Type, Union

import click


class ExitCode(IntEnum):
    """Process exit codes; `meaning` is the line `--help` and the docs show for each."""

    OK = 0, "success"
    FAILURE = 1, "unexpected failure (a bug: please report it)"
    USAGE = 2, "the command line does not parse (unknown option, bad value or range)"
    BAD_INPUT = 3, "options that cannot be carried out, output exists, bad settings file"
    BAD_DATA = 4, "a data source, recording or CSV file is missing or malformed"
    BAD_MODEL = 5, "a model, run folder or bundle is missing, corrupt or does not fit"
    CONVERSION_FAILED = 6, "the TFLite converter refused the model"
    PARITY_FAILED = 7, "a variant failed the parity gate (written, not deployable)"
    IO_FAILED = 8, "a source, sink or output file failed (bind, read, write)"
    NO_INTERPRETER = 9, "no TFLite interpreter package can be imported"

    def __new__(cls, value: int, meaning: str):
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member


class CliError(click.ClickException):
    """A one-line error that ends the command with `code`."""

    code = ExitCode.FAILURE

    def __init__(self, message: str):
        super().__init__(message)
        self.exit_code = int(self.code)


class UsageFailed(CliError):
    code = ExitCode.USAGE


class BadInput(CliError):
    code = ExitCode.BAD_INPUT


class BadData(CliError):
    code = ExitCode.BAD_DATA


class BadModel(CliError):
    code = ExitCode.BAD_MODEL


class ConversionFailed(CliError):
    code = ExitCode.CONVERSION_FAILED


class ParityFailed(CliError):
    code = ExitCode.PARITY_FAILED


class IOFailed(CliError):
    code = ExitCode.IO_FAILED


class NoInterpreter(CliError):
    code = ExitCode.NO_INTERPRETER


#: The CliError class of each code except OK.
ERROR_CLASSES: Mapping[ExitCode, Type[CliError]] = {
    cls.code: cls for cls in (CliError, UsageFailed, BadInput, BadData, BadModel,
                              ConversionFailed, ParityFailed, IOFailed, NoInterpreter)}

#: A library exception type mapped to its code, or to a function choosing the code.
ErrorTable = Mapping[Type[BaseException], Union[ExitCode, Callable[[BaseException], ExitCode]]]


def cli_error(exc: BaseException, errors: ErrorTable):
    """The CliError for `exc` by the first matching entry of `errors`; None if none matches."""
    for kind, code in errors.items():
        if isinstance(exc, kind):
            code = code if isinstance(code, ExitCode) else code(exc)
            return ERROR_CLASSES[code](str(exc))
    return None


def codes_help(codes: Iterable[ExitCode]) -> str:
    """The "Exit codes:" block for a group's --help, kept as lines by click's \\b marker."""
    rows = [f"  {int(code)}  {code.meaning}" for code in sorted(set(codes))]
    return "\b\nExit codes (docs/CONTRACTS.md):\n" + "\n".join(rows)


class MappedGroup(click.Group):
    """A click group that maps its commands' library exceptions through `errors`.

    `--help` lists the codes the tool can return under the commands: those every tool has,
    those in `errors`, and `codes` (raised by the CLI itself or chosen by a function).
    """

    def __init__(self, *args, errors: ErrorTable, codes: Iterable[ExitCode] = (), **kwargs):
        mapped = (code for code in errors.values() if isinstance(code, ExitCode))
        codes = {ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE, *mapped, *codes}
        super().__init__(*args, epilog=codes_help(codes), **kwargs)
        self.errors = errors

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            error = cli_error(exc, self.errors)
            if error is None:
                raise
            raise error from None
