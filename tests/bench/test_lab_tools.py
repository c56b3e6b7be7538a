"""The lab tools run as packages: `python -m scripts.NAME` from the repository root, and the
benchmark's workers as fresh processes started by scripts.bench.plan.Runner."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts import REPO
from scripts.bench.plan import Runner

GOLDEN = REPO / "tests" / "data_golden" / "bundle"
TOOLS = ("scripts.bench", "scripts.leaderboard", "scripts.leaderboard.score",
         "scripts.int8_agreement", "scripts.replay_eval", "scripts.tune_smoothing",
         "scripts.make_golden_bundle", "scripts.context_eval")


@pytest.mark.parametrize("module", TOOLS)
def test_every_tool_prints_its_help_as_a_module(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()


def test_repo_is_the_folder_that_holds_the_scripts_package():
    assert (REPO / "scripts" / "__init__.py").is_file() and (REPO / "setup.cfg").is_file()


def test_runner_starts_the_runtime_worker_module_and_returns_its_result():
    runner = Runner({"runtime": sys.executable}, notes=[])
    result = runner.call("runtime", "rt", "latency", {"bundle": str(GOLDEN), "n": 5,
                                                      "batch": 2, "batch_calls": 3,
                                                      "variants": ["float32"]})
    assert list(result["models"]) == ["float32"]
    assert result["models"]["float32"]["invoke"]["n"] == 5
    assert runner.log[0].startswith("rt latency (runtime): ") and runner.notes == []


def test_runner_turns_a_worker_failure_into_an_error_and_a_note():
    runner = Runner({"runtime": sys.executable, "train": None}, notes=[])
    failed = runner.call("runtime", "rt", "no_such_task", {})
    assert failed["error"].startswith("worker exited 2: usage:")
    assert runner.notes == [f"no_such_task: {failed['error']}"]
    assert runner.call("train", "alt", "keras", {}) == {"error": "no train Python given"}


def test_worker_reports_an_exception_as_data(tmp_path: Path):
    runner = Runner({"runtime": sys.executable}, notes=[])
    result = runner.call("runtime", "rt", "latency", {"bundle": str(tmp_path)})
    assert "error" in result and "BundleError" in result["error"]
