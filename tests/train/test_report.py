"""Evaluation metrics against hand-computed cases; metrics file and plots (numpy only)."""
import json
import sys

import numpy as np
import pytest

from har_train.dataset import WindowSet
from har_train.report import (confusion_matrix, evaluate, format_table,
                              metrics_from_predictions, plot_confusion, plot_history,
                              write_metrics)

LABELS = ("a", "b", "c")


def test_confusion_matrix_rows_are_truth_columns_are_predictions():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_metrics_match_a_hand_computed_case():
    # truth a a b c c c, predicted a b b c c a
    m = metrics_from_predictions(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]),
                                 LABELS)
    assert m["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (m["per_class"][k] for k in LABELS)
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(1 / 2), 1 / 2, 2)
    assert b["precision"] == pytest.approx(1 / 2) and b["recall"] == 1.0
    assert b["f1"] == pytest.approx(2 / 3)
    assert c["precision"] == 1.0 and c["recall"] == pytest.approx(2 / 3)
    assert c["f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert m["n"] == 6 and m["labels"] == list(LABELS)
    assert json.loads(json.dumps(m)) == m


def test_unpredicted_class_scores_zero_and_absent_class_is_left_out_of_macro_f1():
    m = metrics_from_predictions(np.array([0, 0, 1]), np.array([0, 0, 0]), LABELS)
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["c"]["support"] == 0
    f1_a = 2 * (2 / 3) * 1 / (2 / 3 + 1)
    assert m["macro_f1"] == pytest.approx((f1_a + 0.0) / 2)
    with pytest.raises(ValueError, match="zero windows"):
        metrics_from_predictions(np.array([], int), np.array([], int), LABELS)


class _FixedModel:
    """Stands in for a Keras model: predicts the class stored in the first sample."""

    def predict(self, x, batch_size=None, verbose=0):
        return np.eye(3)[x[:, 0, 0].astype(int)]


def test_evaluate_scores_the_model_predictions():
    x = np.zeros((4, 2, 1), np.float32)
    x[:, 0, 0] = [0, 1, 2, 2]
    ws = WindowSet(x, np.array([0, 1, 2, 1]), np.zeros(4, np.int64))
    m = evaluate(_FixedModel(), ws, LABELS)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    table = format_table(m)
    assert "accuracy 0.7500" in table and table.count("\n") == 1 + len(LABELS)


def test_write_metrics_round_trips(tmp_path):
    m = metrics_from_predictions(np.array([0, 1]), np.array([0, 1]), LABELS)
    assert json.loads(write_metrics(tmp_path / "m.json", m).read_text()) == m


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    cm = [[3, 1, 0], [0, 2, 0], [1, 0, 4]]
    assert plot_confusion(cm, LABELS, tmp_path / "cm.png").stat().st_size > 1000
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}
    assert plot_history(history, tmp_path / "h.png").stat().st_size > 1000


def test_plots_are_skipped_with_a_warning_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.warns(UserWarning, match="matplotlib is not installed"):
        assert plot_history({"loss": [1.0]}, tmp_path / "h.png") is None
    assert not (tmp_path / "h.png").exists()
