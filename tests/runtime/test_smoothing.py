"""The smoother: averaging, abstaining below min_confidence, hysteresis against odd windows."""
import numpy as np
import pytest

from har_runtime.contract.smoothing import DEFAULT_SMOOTHING, UNKNOWN, Smoother, SmoothingSettings

LABELS = ("a", "b", "c")
A, B, SPLIT = [0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.34, 0.33, 0.33]


def run(settings, stream):
    smoother = Smoother(LABELS, settings)
    return [smoother.update(np.array(p)) for p in stream]


def test_one_odd_window_does_not_flip_with_hysteresis():
    out = run(SmoothingSettings(k=1, min_confidence=0.0, hysteresis=2), [A, A, B, A, A])
    assert out == ["a", "a", "a", "a", "a"]


def test_a_lasting_change_is_followed_after_hysteresis_windows():
    out = run(SmoothingSettings(k=1, min_confidence=0.0, hysteresis=2), [A, B, B, B])
    assert out == ["a", "a", "b", "b"]


def test_low_confidence_reports_unknown():
    out = run(SmoothingSettings(k=1, min_confidence=0.5, hysteresis=1), [A, SPLIT])
    assert out == ["a", UNKNOWN]


def test_probability_average_over_k_windows():
    # Mean of A and B over k=2 is (0.475, 0.475, 0.05): below 0.5, so unknown; then b wins.
    out = run(SmoothingSettings(k=2, min_confidence=0.5, hysteresis=1), [A, B, B])
    assert out == ["a", UNKNOWN, "b"]


def test_vote_counts_argmax_only():
    out = run(SmoothingSettings(method="vote", k=3, hysteresis=1), [A, B, B, B])
    assert out == ["a", "a", "b", "b"]


def test_reset_forgets_history():
    smoother = Smoother(LABELS, SmoothingSettings(k=3, min_confidence=0.0, hysteresis=3))
    smoother.update(np.array(A))
    smoother.reset()
    assert smoother.current == UNKNOWN
    assert smoother.update(np.array(B)) == "b"


def test_settings_round_trip_and_refuse_unknown_keys():
    assert SmoothingSettings.from_dict(DEFAULT_SMOOTHING.to_dict()) == DEFAULT_SMOOTHING
    with pytest.raises(ValueError, match="unknown smoothing settings"):
        SmoothingSettings.from_dict({"window": 3})
    with pytest.raises(ValueError):
        SmoothingSettings(method="median")
