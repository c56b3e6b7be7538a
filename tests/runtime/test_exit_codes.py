"""The shared exit-code table: one class per code, the mapping helper, and the places that
restate the numbers (docs/CONTRACTS.md, the systemd unit) agree with it."""
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from har_runtime.exit_codes import (ERROR_CLASSES, BadData, CliError, ExitCode, MappedGroup,
                                    cli_error, codes_help)

REPO = Path(__file__).resolve().parents[2]


def test_codes_are_distinct_and_each_failure_has_one_click_exception():
    assert [int(c) for c in ExitCode] == list(range(len(ExitCode)))
    assert set(ERROR_CLASSES) == set(ExitCode) - {ExitCode.OK}
    for code, cls in ERROR_CLASSES.items():
        assert issubclass(cls, click.ClickException) and cls("x").exit_code == code
        assert cls.code is code
    assert all(code.meaning and "\n" not in code.meaning for code in ExitCode)


class Mismatch(ValueError):
    pass


class Specific(Mismatch):
    pass


def test_the_first_matching_entry_wins_and_a_function_may_choose():
    errors = {Specific: ExitCode.BAD_MODEL, Mismatch: ExitCode.BAD_DATA,
              KeyError: lambda exc: ExitCode.IO_FAILED}
    assert isinstance(cli_error(Specific("s"), errors), ERROR_CLASSES[ExitCode.BAD_MODEL])
    error = cli_error(Mismatch("m"), errors)
    assert type(error) is BadData and error.message == "m"
    assert cli_error(KeyError("k"), errors).exit_code == ExitCode.IO_FAILED
    assert cli_error(TypeError("t"), errors) is None


@click.group(cls=MappedGroup, errors={Mismatch: ExitCode.BAD_DATA},
             codes=[ExitCode.IO_FAILED])
def tool():
    """A tool."""


@tool.command()
@click.argument("kind")
def fail(kind):
    raise {"mapped": Mismatch("bad rows"), "bug": TypeError("oops")}[kind]


def test_a_group_maps_library_errors_and_leaves_bugs_alone():
    mapped = CliRunner().invoke(tool, ["fail", "mapped"])
    assert mapped.exit_code == ExitCode.BAD_DATA and mapped.output == "Error: bad rows\n"
    bug = CliRunner().invoke(tool, ["fail", "bug"])
    assert bug.exit_code == ExitCode.FAILURE and isinstance(bug.exception, TypeError)
    shown = CliRunner().invoke(tool, ["--help"]).output
    listed = [int(n) for n in re.findall(r"^\s+(\d)\s{2}", shown, re.M)]
    assert listed == [0, 1, 2, ExitCode.BAD_DATA, ExitCode.IO_FAILED]
    assert codes_help([ExitCode.OK]).startswith("\b\n")


def test_contracts_doc_lists_the_table():
    doc = (REPO / "docs" / "CONTRACTS.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", doc, re.M)
    assert [(int(n), name) for n, name in rows] == [(int(c), c.name) for c in ExitCode]


def test_the_systemd_unit_refuses_to_restart_on_the_codes_a_restart_cannot_fix():
    unit = (REPO / "scripts" / "har-runtime.service").read_text()
    codes = re.search(r"^RestartPreventExitStatus=(.*)$", unit, re.M).group(1).split()
    assert [int(c) for c in codes] == [ExitCode.USAGE, ExitCode.BAD_INPUT, ExitCode.BAD_MODEL,
                                       ExitCode.NO_INTERPRETER]
    settings = re.search(r"^SETTINGS=(\S+)$", (REPO / "scripts" / "install_rpi.sh").read_text(),
                         re.M).group(1)
    assert f"--config {settings} " in unit


@pytest.mark.parametrize("code", [c for c in ExitCode if c is not ExitCode.OK])
def test_a_cli_error_carries_its_message(code):
    error = ERROR_CLASSES[code]("one line")
    assert isinstance(error, CliError) and error.format_message() == "one line"
