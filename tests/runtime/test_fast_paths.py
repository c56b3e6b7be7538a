"""The hot paths' shortcuts give exactly what the general code gives, bit for bit.

Resampler: the clean-chunk fast path against the general path, and every frame against
np.interp; windower: windows against the frames they cover; smoother: against numpy's mean;
stream: `stage` + `finish` against `push_events`.
"""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from har_runtime.contract.resample import StreamResampler
from har_runtime.contract.results import ActivityChange, Prediction
from har_runtime.contract.smoothing import UNKNOWN, Smoother, SmoothingSettings, argmax
from har_runtime.contract.spec import PreprocessSpec
from har_runtime.contract.windowing import Windower
from har_runtime.stream import StreamClassifier
from test_stream_mock import SPEC, MockClassifier, activity_signal, jittered_times

RATE, GAP = 50.0, 0.5


def _chunks(n, cuts):
    bounds = sorted({0, n, *[c % (n + 1) for c in cuts]})
    return list(zip(bounds[:-1], bounds[1:]))


def _stream(n, seed, on_grid, messy):
    rng = np.random.default_rng(seed)
    t = 1000.0 + np.arange(n) / RATE if on_grid else jittered_times(n, RATE, 0.3, seed)
    x = rng.normal(size=(n, 3))
    x[rng.random((n, 3)) < 0.02] = -0.0
    if messy:  # NaNs, duplicates/reordering, gaps and clock resets
        x[rng.random(n) < 0.02, 1] = np.nan
        t[rng.random(n) < 0.02] -= 0.05
        for i in np.flatnonzero(rng.random(n) < 0.02):  # steps near max_gap_s, and far off
            t[i:] += rng.choice([2.0, -5.0, GAP - 1 / RATE, rng.uniform(0.4, 0.6)])
    return t, x, rng.integers(-1, 7, size=n)


def _run(resampler, t, x, labels, cuts):
    segs = [s for a, b in _chunks(len(t), cuts) for s in resampler.push(t[a:b], x[a:b],
                                                                         labels[a:b])]
    return ([(s.times.tobytes(), s.frames.tobytes(), s.labels.tobytes(), s.new) for s in segs],
            vars(resampler.counters))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), cuts=st.lists(st.integers(0, 10_000), max_size=25),
       seed=st.integers(0, 2**16), on_grid=st.booleans(), messy=st.booleans())
def test_resampler_fast_path_equals_the_general_path(n, cuts, seed, on_grid, messy):
    t, x, labels = _stream(n, seed, on_grid, messy)
    general = StreamResampler(RATE, GAP)
    general._is_clean = lambda t, x: False  # every chunk takes the cleaning path
    general.push_rows = lambda t, x: None
    assert _run(StreamResampler(RATE, GAP), t, x, labels, cuts) == \
        _run(general, t, x, labels, cuts)


def test_clean_chunks_take_the_fast_path_from_the_first_one():
    t, x, _ = _stream(640, 3, on_grid=False, messy=False)
    r = StreamResampler(RATE, GAP)
    clean = r._is_clean
    taken = []
    r._is_clean = lambda t, x: taken.append(clean(t, x)) or taken[-1]
    for a in range(0, 640, 64):
        r.push(t[a:a + 64], x[a:a + 64])
    assert taken == [True] * 10
    assert [s.new for s in r.push(t[:5] + 100.0, x[:5])] == [True]  # a gap: not clean
    assert taken[-1] is False


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), cuts=st.lists(st.integers(0, 10_000), max_size=25),
       seed=st.integers(0, 2**16), on_grid=st.booleans())
def test_frames_are_np_interp_of_the_samples(n, cuts, seed, on_grid):
    t, x, labels = _stream(n, seed, on_grid, messy=False)
    r = StreamResampler(RATE, GAP)
    segs = [s for a, b in _chunks(n, cuts) for s in r.push(t[a:b], x[a:b])]
    k = np.arange(int((t[-1] - t[0]) * RATE) + 3)
    grid = t[0] + k / RATE
    grid = grid[grid <= t[-1]]
    want = np.stack([np.interp(grid, t, x[:, c]) for c in range(3)], axis=1)
    assert np.concatenate([s.times for s in segs]).tobytes() == grid.tobytes()
    assert np.concatenate([s.frames for s in segs]).tobytes() == want.tobytes()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 400), cuts=st.lists(st.integers(0, 10_000), max_size=30),
       seed=st.integers(0, 2**16))
def test_windows_are_the_frames_they_cover(n, cuts, seed):
    spec = PreprocessSpec(window=20, hop=7)
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(n, 3))
    labels = rng.integers(1, 3, size=n)
    w = Windower(spec, with_labels=True)
    parts = [w.push(frames[a:b], labels[a:b]) for a, b in _chunks(n, cuts)]
    ends = np.concatenate([p.end_index for p in parts]) if parts else np.empty(0, int)
    assert ends.tolist() == list(range(19, n, 7))
    for p in parts:
        for window, end, label in zip(p.windows, p.end_index, p.labels):
            covered = frames[end - 19:end + 1]
            assert window.tobytes() == covered.astype(np.float32).tobytes()
            same = np.all(labels[end - 19:end + 1] == labels[end])
            assert label == (labels[end] - 1 if same else -1)


class NumpySmoother:
    """The smoother as first written: a numpy ring and np.mean (the reference)."""

    def __init__(self, labels, s):
        self.labels, self.s = labels, s
        self.ring, self.filled, self.next = np.zeros((s.k, len(labels))), 0, 0
        self.current, self.candidate, self.streak = UNKNOWN, None, 0

    def update(self, probs):
        slot = self.ring[self.next]
        if self.s.method == "vote":
            slot[:] = 0.0
            slot[int(np.argmax(probs))] = 1.0
        else:
            slot[:] = probs
        self.next = (self.next + 1) % self.s.k
        self.filled = min(self.filled + 1, self.s.k)
        mean = self.ring[:self.filled].mean(axis=0)
        best = int(np.argmax(mean))
        ok = self.s.method == "vote" or mean[best] >= self.s.min_confidence
        proposal = self.labels[best] if ok else UNKNOWN
        if proposal == self.current:
            self.candidate, self.streak = None, 0
        else:
            self.streak = self.streak + 1 if proposal == self.candidate else 1
            self.candidate = proposal
            if self.streak >= self.s.hysteresis or self.current == UNKNOWN:
                self.current, self.candidate, self.streak = proposal, None, 0
        return self.current


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 6), hysteresis=st.integers(1, 3),
       vote=st.booleans(), min_confidence=st.sampled_from([0.0, 0.25, 1 / 3, 0.4, 0.5, 0.9]))
def test_smoother_matches_the_numpy_mean_reference(seed, k, hysteresis, vote, min_confidence):
    rng = np.random.default_rng(seed)
    settings_ = SmoothingSettings("vote" if vote else "prob_average", k, min_confidence,
                                  hysteresis)
    labels = ("a", "b", "c", "d")
    ours, ref = Smoother(labels, settings_), NumpySmoother(labels, settings_)
    for _ in range(120):
        # Few distinct values: ties and means landing exactly on min_confidence are common.
        p = rng.choice([0.0, 0.1, 0.25, 1 / 3, 0.4, 0.5, 0.7], size=4).astype(np.float32)
        if rng.random() < 0.03:
            p[rng.integers(4)] = np.nan
        assert ours.update(p.tolist() if rng.random() < 0.5 else p) == ref.update(p)


def test_argmax_is_numpys_including_ties_and_nan():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        v = rng.choice([0.0, 1.0, 2.0, np.nan, -np.inf], size=int(rng.integers(1, 7)))
        assert argmax(v.tolist()) == int(np.argmax(v))


def test_stage_then_finish_is_push_events():
    x = activity_signal(40.0, seed=1)
    t = jittered_times(len(x), seed=1)
    t[900:] += 3.0  # a gap: the smoother restarts mid-stream
    whole, halves = (StreamClassifier(SPEC, MockClassifier(), device="d") for _ in range(2))
    clf = MockClassifier()
    a, b = [], []
    for i in range(0, len(t), 37):
        a += whole.push_events(t[i:i + 37], x[i:i + 37], arrival=0.0)
        staged = halves.stage(t[i:i + 37], x[i:i + 37], arrival=0.0)
        probs = clf.predict_proba(staged.windows) if staged.t_end else None
        b += halves.finish(staged, probs)
    key = [(type(e), {k: v for k, v in e.to_dict().items() if k != "latency_s"}) for e in a]
    assert key == [(type(e), {k: v for k, v in e.to_dict().items() if k != "latency_s"})
                   for e in b]
    assert any(isinstance(e, ActivityChange) for e in a) and whole.counters == halves.counters


def test_finish_refuses_probabilities_of_the_wrong_count():
    sc = StreamClassifier(SPEC, MockClassifier())
    staged = sc.stage(np.arange(48) / 50.0, activity_signal(1.0)[:48])
    assert len(staged.t_end) == 2
    with pytest.raises(ValueError, match="2 windows"):
        sc.finish(staged, np.full((1, 3), 1 / 3, np.float32))


def test_events_serialise_as_compact_json_dumps():
    p = Prediction("d\u00e9v", 1.25, "walk", {"walk": 0.5, 'q"': 0.25}, "walk", 0.5, 1e-4)
    c = ActivityChange("d", 2.0, UNKNOWN, "walk", 0.5)
    for e in (p, c):
        assert e.to_json() == json.dumps(e.to_dict(), separators=(",", ":"))
