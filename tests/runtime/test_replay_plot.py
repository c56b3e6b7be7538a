"""The replay PNG: every panel has an x label and a title naming the accuracy it shows."""
import numpy as np
import pytest

from har_runtime.contract.results import Prediction
from har_runtime.replay import ReplayResult, panel_title, plot_timelines, timeline, timeline_figure
from har_runtime.stream import StreamCounters

LABELS = ("walking", "sitting")


def _result(name, labels, smoothed, truth):
    preds = tuple(Prediction("d", 10.0 + i, label, {}, smooth, 0.9, 0.0)
                  for i, (label, smooth) in enumerate(zip(labels, smoothed)))
    truth = None if truth is None else np.array(truth)
    keep = [] if truth is None else truth >= 0
    names = np.array(LABELS)
    scored = int(np.sum(keep))
    acc = None if not scored else float(np.mean(np.array(labels)[keep] == names[truth[keep]]))
    smooth = None if not scored else float(np.mean(np.array(smoothed)[keep] == names[truth[keep]]))
    return ReplayResult(name, 10.0, preds, truth, timeline(preds, 10.0), acc, smooth, scored,
                        StreamCounters())


def test_panel_titles_name_window_and_smoothed_accuracy():
    scored = _result("s1", ["walking", "sitting", "walking"], ["walking", "walking", "walking"],
                     [0, 1, -1])
    assert panel_title(scored) == ("s1: window accuracy 1.000, smoothed accuracy 0.500 "
                                   "(2 labelled windows)")
    unlabelled = _result("s2", ["walking"], ["walking"], None)
    assert panel_title(unlabelled) == "s2 (no labels: not scored)"


def test_every_panel_has_an_x_label_and_the_figure_a_title(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [_result("s1", ["walking", "sitting"], ["walking", "sitting"], [0, 1]),
               _result("s2", ["sitting"], ["unknown"], None)]
    fig = timeline_figure(plt, results, LABELS)
    try:
        assert [ax.get_xlabel().startswith("time from recording start (s") for ax in fig.axes] \
            == [True, True]
        assert [ax.get_title() for ax in fig.axes] == [panel_title(r) for r in results]
        assert "smoothed" in fig._suptitle.get_text() and "window" in fig._suptitle.get_text()
    finally:
        plt.close(fig)
    plot_timelines(results, LABELS, str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
