"""Model selection is announced, and training_curves.png is titled and marks the restored epoch."""
import math

import pytest

from har_train.fit import selection_message
from har_train.report import best_epoch, history_figure, plot_history


def test_best_epoch_is_the_lowest_finite_validation_loss():
    assert best_epoch([0.9, 0.4, 0.5, 0.4]) == 2
    assert best_epoch([math.nan, 0.7, math.inf]) == 2
    assert best_epoch([math.nan]) is None and best_epoch([]) is None


def test_selection_message_says_whether_training_stopped_early_and_what_was_restored():
    assert selection_message([0.9, 0.4, 0.5, 0.6], epochs=10, patience=2) == (
        "early stopping after epoch 4: val_loss did not improve for 2 epochs; "
        "restored epoch 2 (lowest val_loss, 0.4000)")
    assert selection_message([0.9, 0.4], epochs=2, patience=5) == (
        "trained all 2 epochs; restored epoch 2 (lowest val_loss, 0.4000)")
    assert selection_message([math.nan], epochs=1, patience=5).endswith(
        "no epoch had a finite val_loss, keeping the last epoch's weights")


def test_training_curves_are_titled_and_mark_the_restored_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.7, 0.8],
               "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.4, 0.6, 0.6]}
    fig = history_figure(plt, history, "seed_cnn")
    try:
        assert fig._suptitle.get_text() == ("seed_cnn training curves: 3 epochs, restored epoch 2 "
                                            "(lowest val_loss)")
        for ax in fig.axes:
            marks = [line for line in ax.get_lines() if line.get_label() == "restored epoch 2"]
            assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]
    finally:
        plt.close(fig)
    assert plot_history(history, tmp_path / "h.png", "seed_cnn").stat().st_size > 1000
