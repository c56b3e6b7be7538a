"""A deterministic stand-in classifier and test signal for the stream and daemon tests.

Other runtime tests import `MockClassifier`, `activity_signal`, `jittered_times` and
`golden_bundle` from here; the tests in this file pin the properties those tests rely on.
"""
from pathlib import Path

import numpy as np
import pytest

from har_runtime.contract.spec import PreprocessSpec

#: The tiny real bundle written by scripts/make_golden_bundle.py (real-TFLite tests use it).
GOLDEN_BUNDLE = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"

SPEC = PreprocessSpec(window=32, hop=16, labels=("still", "walk", "run"), label_ids=(1, 2, 3))


class MockClassifier:
    """Softmax of a fixed linear map of per-window channel means and spreads.

    Each window's output depends on that window alone (batch-size invariant) and on the
    signal's scale (so unit mistakes change predictions).
    """

    def __init__(self, spec: PreprocessSpec = SPEC, seed: int = 4):
        self.spec = spec
        channels = spec.input_shape[1]
        self.weights = np.random.default_rng(seed).normal(size=(2 * channels, spec.num_classes))
        self.weights[channels:] = np.abs(self.weights[channels:]) * 4.0
        self.calls = []

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(windows.shape[0])
        x = np.asarray(windows, dtype=np.float64)
        feats = np.concatenate([x.mean(axis=1), x.std(axis=1)], axis=1)
        logits = feats @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def activity_signal(seconds: float, rate: float = 50.0, seed: int = 0, channels: int = 3):
    """Piecewise activities (5 s each): a random gravity direction plus oscillation, in g."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.empty((n, channels))
    for start in range(0, n, int(5 * rate)):
        sl = slice(start, min(n, start + int(5 * rate)))
        gravity = rng.normal(size=channels)
        gravity /= np.linalg.norm(gravity)
        amp, freq = rng.uniform(0.0, 1.2), rng.uniform(0.5, 3.0)
        out[sl] = gravity + amp * np.sin(2 * np.pi * freq * t[sl])[:, None] * rng.normal(
            size=channels)
    return out + rng.normal(scale=0.02, size=out.shape)


def jittered_times(n: int, rate: float = 50.0, jitter: float = 0.2, seed: int = 0,
                   start: float = 1000.0) -> np.ndarray:
    """Sample times at `rate` with each stamp moved by up to ±`jitter` of a period."""
    rng = np.random.default_rng(seed)
    return start + (np.arange(n) + rng.uniform(-jitter, jitter, n)) / rate


def golden_bundle() -> Path:
    """The golden bundle's path; skips the calling test when it has not been generated."""
    if not (GOLDEN_BUNDLE / "bundle.json").is_file():
        pytest.skip(f"golden bundle missing at {GOLDEN_BUNDLE} (scripts/make_golden_bundle.py)")
    return GOLDEN_BUNDLE


def test_mock_is_batch_invariant_and_deterministic():
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(10,) + SPEC.input_shape).astype(np.float32)
    whole = MockClassifier().predict_proba(windows)
    parts = np.concatenate([MockClassifier().predict_proba(windows[i:i + 3])
                            for i in range(0, 10, 3)])
    assert whole.tobytes() == parts.tobytes()
    assert np.allclose(whole.sum(axis=1), 1.0, atol=1e-6)


def test_signal_produces_varied_predictions():
    from har_runtime.contract.windowing import make_windows

    frames = activity_signal(60.0)
    probs = MockClassifier().predict_proba(make_windows(frames, SPEC).windows)
    assert len(set(np.argmax(probs, axis=1))) == SPEC.num_classes
