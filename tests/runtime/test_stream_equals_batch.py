"""Rule 1: streaming in any chunk sizes gives the batch path's windows, bit for bit."""
import numpy as np
from hypothesis import given, settings, strategies as st

from har_runtime.contract.resample import StreamResampler, resample
from har_runtime.contract.spec import ALL_CHANNELS, PreprocessSpec
from har_runtime.contract.windowing import Windower, make_windows


def _chunks(n, cuts):
    bounds = sorted({0, n, *[c % (n + 1) for c in cuts]})
    return list(zip(bounds[:-1], bounds[1:]))


SPECS = [
    PreprocessSpec(window=32, hop=16),
    PreprocessSpec(window=20, hop=7, acc_mode="body", gravity_taps=9),
    PreprocessSpec(window=16, hop=16, channels=ALL_CHANNELS, acc_mode="body_gravity",
                   gravity_taps=5, min_label_fraction=0.6),
    PreprocessSpec(window=24, hop=5, min_label_fraction=0.6, label_span=9),
]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), cuts=st.lists(st.integers(0, 10_000), max_size=25),
       which=st.integers(0, len(SPECS) - 1), seed=st.integers(0, 2**16))
def test_windower_chunking_is_bit_identical(n, cuts, which, seed):
    spec = SPECS[which]
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(n, len(spec.channels)))
    labels = rng.integers(-1, 7, size=n).repeat(1)
    batch = make_windows(frames, spec, labels)
    w = Windower(spec, with_labels=True)
    parts = [w.push(frames[a:b], labels[a:b]) for a, b in _chunks(n, cuts)]
    got = np.concatenate([p.windows for p in parts]) if parts else batch.windows[:0]
    ends = np.concatenate([p.end_index for p in parts]) if parts else batch.end_index[:0]
    labs = np.concatenate([p.labels for p in parts]) if parts else batch.labels[:0]
    assert got.tobytes() == batch.windows.tobytes()
    assert np.array_equal(ends, batch.end_index)
    assert np.array_equal(labs, batch.labels)
    expected = 0 if n < spec.window else 1 + (n - spec.window) // spec.hop
    assert len(batch) == expected


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), cuts=st.lists(st.integers(0, 10_000), max_size=25),
       seed=st.integers(0, 2**16), jitter=st.floats(0.0, 0.2))
def test_resampler_chunking_is_bit_identical(n, cuts, seed, jitter):
    rng = np.random.default_rng(seed)
    t = 1000.0 + np.arange(n) / 50.0 + rng.uniform(-jitter, jitter, n) / 50.0
    t[rng.random(n) < 0.02] += 2.0  # occasional clock jumps -> out-of-order and gaps
    x = rng.normal(size=(n, 3))
    x[rng.random(n) < 0.01, 1] = np.nan
    whole = resample(t, x, 50.0, 0.5)
    r = StreamResampler(50.0, 0.5)
    parts = [s for a, b in _chunks(n, cuts) for s in r.push(t[a:b], x[a:b])]

    def flat(segs):
        times = np.concatenate([s.times for s in segs]) if segs else np.empty(0)
        frames = np.concatenate([s.frames for s in segs]) if segs else np.empty((0, 3))
        news = [float(s.times[0]) for s in segs if s.new]
        return times, frames, news

    a, b = flat(whole), flat(parts)
    assert a[0].tobytes() == b[0].tobytes()
    assert a[1].tobytes() == b[1].tobytes()
    assert a[2] == b[2]
    assert all(np.all(np.diff(s.times) > 0) for s in whole)


def test_regular_input_is_reproduced_exactly():
    t = np.arange(500) / 50.0
    x = np.random.default_rng(0).normal(size=(500, 3))
    (seg,) = resample(t, x, 50.0, 0.5)
    assert np.array_equal(seg.frames, x)
    assert np.array_equal(seg.times, t)


def test_gap_starts_new_segment_and_is_counted():
    t = np.concatenate([np.arange(100) / 50.0, 10.0 + np.arange(100) / 50.0])
    r = StreamResampler(50.0, 0.5)
    segs = r.push(t, np.zeros((200, 3)))
    assert [s.new for s in segs] == [True, True]
    assert r.counters.gaps == 1
    assert segs[1].times[0] == 10.0


def test_duplicates_nan_and_reordering_are_dropped_and_counted():
    t = np.array([0.0, 0.02, 0.02, 0.01, 0.04, 0.06])
    x = np.ones((6, 3))
    x[4, 0] = np.inf
    r = StreamResampler(50.0, 0.5)
    r.push(t, x)
    assert r.counters.nonfinite == 1
    assert r.counters.out_of_order == 2
    assert r.counters.accepted == 3


def test_huge_timestamps_are_rejected_not_expanded():
    r = StreamResampler(50.0, 0.5)
    segs = r.push([1e24, 1e20, 1.7e18, 5.0], np.ones((4, 3)))
    assert r.counters.nonfinite == 3
    assert sum(s.times.size for s in segs) == 1  # only t=5.0 survives, as one frame


def test_clock_reset_backwards_starts_a_new_segment():
    r = StreamResampler(50.0, 0.5)
    r.push(1000.0 + np.arange(100) / 50.0, np.zeros((100, 3)))
    segs = r.push(np.arange(500) / 50.0, np.ones((500, 3)))
    assert r.counters.gaps == 1 and r.counters.out_of_order == 0
    assert segs[0].new and segs[0].times[0] == 0.0
    assert sum(s.times.size for s in segs) == 500
    # A small step back (within max_gap_s) is still reordering, dropped and counted.
    r.push([9.95, 9.999], np.ones((2, 3)))
    assert r.counters.out_of_order == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), cuts=st.lists(st.integers(0, 10_000), max_size=25),
       seed=st.integers(0, 2**16))
def test_chunking_is_invariant_under_clock_resets(n, cuts, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50.0
    for i in np.flatnonzero(rng.random(n) < 0.03):
        t[i:] -= rng.uniform(0.0, 3.0)  # steps back, some small (reordering), some resets
    x = rng.normal(size=(n, 3))
    whole, r = resample(t, x, 50.0, 0.5), StreamResampler(50.0, 0.5)
    parts = [s for a, b in _chunks(n, cuts) for s in r.push(t[a:b], x[a:b])]
    assert _frames(whole).tobytes() == _frames(parts).tobytes()
    assert [s.new for s in whole if s.new] == [s.new for s in parts if s.new]


def _frames(segments) -> np.ndarray:
    return np.concatenate([s.frames for s in segments]) if segments else np.empty((0, 3))
