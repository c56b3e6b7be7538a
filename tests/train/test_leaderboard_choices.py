"""The leaderboard's report takes how each choice was made from docs/RESULTS_CHOICES.md, and its
scorer runs as `python -m scripts.leaderboard.score` whatever the working directory."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts.leaderboard.cli import score_in_runtime
from scripts.leaderboard.report import CHOICES_FILE, CHOICES_MARKER, read_choices

ROOT = Path(__file__).resolve().parents[2]


def test_the_report_copies_the_hand_written_choices_below_the_marker():
    text = read_choices()
    assert CHOICES_FILE == ROOT / "docs" / "RESULTS_CHOICES.md"
    assert text.startswith("* **har6-acc (preset `acc3-int8`).**")
    assert "| int8_ls | label smoothing 0.1" in text and CHOICES_MARKER not in text
    assert "# How the leaderboard presets were chosen" not in text


def test_choices_without_the_marker_or_the_file_are_refused(tmp_path):
    unmarked = tmp_path / "C.md"
    unmarked.write_text("# Choices\n\n* a choice\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no text below the line"):
        read_choices(unmarked)
    unmarked.write_text(f"# Choices\n\n{CHOICES_MARKER}\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no text below the line"):
        read_choices(unmarked)
    with pytest.raises(ValueError, match="cannot read"):
        read_choices(tmp_path / "missing.md")
    unmarked.write_text(f"intro\n{CHOICES_MARKER}\n* kept\n", encoding="utf-8")
    assert read_choices(unmarked) == "* kept"


def test_scoring_runs_the_scorer_module_from_any_working_directory(tmp_path, monkeypatch):
    if not any(importlib.util.find_spec(m) for m in ("tflite_runtime", "ai_edge_litert")):
        pytest.skip("no TFLite interpreter installed")
    with np.load(ROOT / "tests" / "data_golden" / "windows.npz") as data:
        x = np.asarray(data["x"][:4], np.float32)
    monkeypatch.chdir(tmp_path)
    scores = score_in_runtime(sys.executable, ROOT / "tests" / "data_golden" / "bundle", x,
                              Path("."))
    assert set(scores) == {"int8", "float32"}
    assert all(len(scores[name]["pred"]) == 4 for name in scores)
    assert not (tmp_path / "test_windows.npz").exists()
