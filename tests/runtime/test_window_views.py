"""A classifier that declares `copies_input` is handed views of the windower's buffer by the
stream's push path; the windows it sees, and so every event, equal those of the copying path,
for any chunking; any other classifier keeps windows of its own."""
import dataclasses

import numpy as np
from hypothesis import given, settings, strategies as st

from har_runtime.stream import StreamClassifier
from test_stream_mock import SPEC, MockClassifier, jittered_times


class Recording(MockClassifier):
    """MockClassifier that keeps every window batch it is given, and a copy made then."""

    def __init__(self, copies: bool):
        super().__init__()
        self.copies_input = copies
        self.seen, self.copies = [], []

    def predict_proba(self, windows):
        self.seen.append(windows)
        self.copies.append(windows.copy())
        return super().predict_proba(windows)


def _feed(clf, t, x, cuts):
    stream = StreamClassifier(SPEC, clf)
    bounds = sorted({0, t.size, *[c % (t.size + 1) for c in cuts]})
    return [{k: v for k, v in dataclasses.asdict(e).items() if k != "latency_s"}
            for a, b in zip(bounds[:-1], bounds[1:])
            for e in stream.push_events(t[a:b], x[a:b])]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), on_grid=st.booleans(),
       cuts=st.lists(st.integers(0, 10_000), max_size=30))
def test_views_give_the_copying_path_bit_for_bit(seed, on_grid, cuts):
    n = 400
    t = 1000.0 + np.arange(n) / 50.0 if on_grid else jittered_times(n, 50.0, 0.2, seed)
    x = np.random.default_rng(seed).normal(size=(n, 3))
    viewing, copying = Recording(True), Recording(False)
    assert _feed(viewing, t, x, cuts) == _feed(copying, t, x, cuts)
    assert len(viewing.seen) == len(copying.seen) > 0
    for a, b in zip(viewing.copies, copying.copies):
        assert a.tobytes() == b.tobytes()


def test_a_classifier_without_the_flag_keeps_windows_of_its_own():
    n = 400
    t, x = 1000.0 + np.arange(n) / 50.0, np.random.default_rng(1).normal(size=(n, 3))
    clf = Recording(False)
    _feed(clf, t, x, list(range(0, n, SPEC.hop)))
    assert len(clf.seen) > 3
    for window, then in zip(clf.seen, clf.copies):  # later pushes left them alone
        assert window.tobytes() == then.tobytes()
