"""scripts.context_eval resumes: a step whose output exists is skipped; a failing step stops
it unless its exit code is one the step allows (a bundle written with an undeployable variant)."""
import sys

import click
import pytest
from click.testing import CliRunner

from scripts.context_eval import EXPORT_OK, _run, main


def test_a_step_whose_output_exists_is_not_run_again(tmp_path):
    done = tmp_path / "done"
    done.write_text("")
    _run([sys.executable, "-c", "raise SystemExit(3)"], done)  # would fail if it ran


def test_exit_codes_outside_ok_stop_the_script(tmp_path):
    with pytest.raises(click.ClickException, match="exited 3"):
        _run([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "never")
    _run([sys.executable, "-c", f"raise SystemExit({EXPORT_OK[1]})"], tmp_path / "never",
         EXPORT_OK)


def test_at_least_one_preset_is_needed():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 2 and "at least one --preset" in result.output
