"""scripts.replay_eval scores what the stream emits: activity accuracy leaves transitions out,
overrides change only the smoothing, and seeds of one recipe are summarised together."""
from pathlib import Path

import click
import numpy as np
import pytest

from har_runtime.bundle import load_bundle
from har_runtime.contract.recording import Recording
from scripts.replay_eval import StreamScore, _smoothing, evaluate_variant, summary_lines

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden"


@pytest.fixture(scope="module")
def context_bundle():
    return load_bundle(GOLDEN / "bundle_context")


def _recording():
    with np.load(GOLDEN / "stream_context.npz") as d:
        x = d["x"].astype(np.float64)
    labels = np.repeat([4, 5, 1], [1000, 1000, 1000]).astype(np.int64)
    return Recording(subject=2, session=1, rate_hz=50.0, acc=x, labels=labels, source="golden")


def test_scores_come_from_the_stream_and_activity_accuracy_is_the_six_activities(
        context_bundle):
    score = evaluate_variant(context_bundle, "int8", [_recording()])
    assert score.windows > 30 and 0.0 <= score.accuracy <= 1.0
    # A 6-class bundle has no transition labels: its activity accuracy is its accuracy.
    assert score.activity_accuracy == score.accuracy
    # k=1, min_confidence=0 is the head's answer as it is.
    assert score.smoothed_accuracy == score.accuracy


def test_smoothing_overrides_are_typed_and_checked(context_bundle):
    s = _smoothing(context_bundle.smoothing, ["k=3", "min_confidence=0.5"])
    assert (s.k, s.min_confidence) == (3, 0.5)
    with pytest.raises(click.BadParameter, match="KEY=VALUE"):
        _smoothing(context_bundle.smoothing, ["window=3"])
    with pytest.raises(click.BadParameter):
        _smoothing(context_bundle.smoothing, ["k=0"])


def test_bundles_that_differ_only_by_seed_share_a_summary_line(context_bundle):
    scores = [StreamScore("int8", a, a, a, a, a, 10, 1.0) for a in (0.9, 0.8)]
    lines = summary_lines([(context_bundle, s) for s in scores])
    rows = [line for line in lines if line.startswith("| ") and "learned context" in line]
    assert len(rows) == 1 and "| 2 | 0.8500 ± 0.0500 |" in rows[0]
