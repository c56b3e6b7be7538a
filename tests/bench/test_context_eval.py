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


def test_the_recipe_exports_the_folds_and_heads_learn_from_their_int8_files(tmp_path,
                                                                           monkeypatch):
    from scripts import context_eval

    calls = []
    monkeypatch.setattr(context_eval, "_run", lambda args, done, ok=(0,): calls.append(
        [str(a) for a in args]))
    monkeypatch.setattr(context_eval.subprocess, "run", lambda *a, **k: None)
    for fold in ("fold1", "fold2"):
        (tmp_path / "p" / "kfold" / fold).mkdir(parents=True)
    for oof in ("int8", "keras"):
        calls.clear()
        result = CliRunner().invoke(main, ["--preset", "p", "--seeds", "1", "--work",
                                           str(tmp_path), "--oof-variant", oof])
        assert result.exit_code == 0, result.output
        exports = [c for c in calls if "convert" in c and "kfold" in c[-1]]
        heads = [c for c in calls if "context" in c[:3]]
        assert len(exports) == (2 if oof == "int8" else 0)
        assert len(heads) == 1
        assert ("--oof-variant" in heads[0]) == (oof == "int8")
        assert heads[0][heads[0].index("--out") + 1].endswith(
            "context" if oof == "int8" else "context-keras")
