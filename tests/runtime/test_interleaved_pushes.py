"""Interleaved devices: the small-push path of the resampler and the engine's per-device pushes.

When every line is a different device, each device gets a sample or two per batch. Those take
the resampler's Python-float path (`StreamResampler.push_rows`); these tests check it against
the numpy path bit for bit, and that any interleaving and batching of devices in the engine gives
each device exactly the events and counters of its whole stream pushed at once.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

from har_runtime.contract import resample as resample_module
from har_runtime.contract.resample import SMALL, StreamResampler
from har_runtime.contract.windowing import Windower, make_windows
from har_runtime.daemon.engine import Engine, EngineSettings
from har_runtime.daemon.sources import Received
from har_runtime.stream import StreamClassifier
from test_daemon_engine import SMOOTH, check_accounting, mock_model
from test_fast_paths import GAP, RATE, _stream
from test_ingest_fast_path import comparable
from test_stream_equals_batch import SPECS
from test_stream_mock import SPEC, MockClassifier, activity_signal, jittered_times


def _small_chunks(n, sizes):
    bounds, a = [], 0
    for size in sizes * (n // max(1, sum(sizes)) + 1):
        if a >= n:
            break
        bounds.append((a, min(n, a + size)))
        a += size
    return bounds


def _segments(resampler, t, x, sizes):
    segs = [s for a, b in _small_chunks(len(t), sizes)
            for s in resampler.push_arrays(t[a:b], x[a:b])]
    return ([(s.times.tobytes(), s.frames.tobytes(), s.new) for s in segs],
            vars(resampler.counters))


def _numpy_only():
    r = StreamResampler(RATE, GAP)
    r.push_rows = lambda t, x: None  # every chunk takes the numpy paths
    return r


def test_this_build_takes_the_small_path():
    assert resample_module._SCALAR_EXACT  # else the tests below would not exercise it
    r = StreamResampler(RATE, GAP)
    r.push(np.arange(3) / RATE, np.zeros((3, 3)))
    assert r.push_rows(np.array([3 / RATE]), np.ones((1, 3))) is not None


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 300), sizes=st.lists(st.integers(1, SMALL + 3), min_size=1, max_size=12),
       seed=st.integers(0, 2**16), on_grid=st.booleans(), messy=st.booleans())
def test_small_pushes_equal_the_numpy_path(n, sizes, seed, on_grid, messy):
    t, x, _ = _stream(n, seed, on_grid, messy)
    t = np.ascontiguousarray(t)
    assert _segments(StreamResampler(RATE, GAP), t, x, sizes) == \
        _segments(_numpy_only(), t, x, sizes)


def _device_stream(seed, seconds):
    x = activity_signal(seconds, seed=seed)
    t = jittered_times(len(x), seed=seed)
    rng = np.random.default_rng(seed)
    t[rng.random(len(t)) < 0.02] -= 0.05  # duplicates / reordering: the general path
    return t, x


def _lines(device, t, x):
    return [f"{device},{ti!r},{a!r},{b!r},{c!r}".encode() for ti, (a, b, c) in zip(t, x)]


def _interleave(per_device, picks):
    """Merge the devices' lines in the order `picks` chooses (each device's order kept)."""
    queues = {d: list(lines) for d, lines in per_device.items()}
    out, i = [], 0
    while any(queues.values()):
        live = [d for d in queues if queues[d]]
        device = live[picks[i % len(picks)] % len(live)]
        i += 1
        out.append(queues[device].pop(0))
    return out


@settings(max_examples=25, deadline=None)
@given(devices=st.integers(1, 5), picks=st.lists(st.integers(0, 20), min_size=1, max_size=40),
       batch=st.integers(1, 400), buffer=st.integers(1, 300), seed=st.integers(0, 2**10))
def test_any_interleaving_gives_each_device_its_whole_stream_events(devices, picks, batch,
                                                                      buffer, seed):
    names = [f"d{i}" for i in range(devices)]
    data = {d: _device_stream(seed + i, 9.0) for i, d in enumerate(names)}
    lines = _interleave({d: _lines(d, *tx) for d, tx in data.items()}, picks)
    engine = Engine(mock_model, EngineSettings(device_buffer=buffer))
    events = [e for a in range(0, len(lines), batch)
              for e in engine.feed(Received(lines[a:a + batch], "mem", 0.0))]
    snap = engine.snapshot(per_device=True)
    check_accounting(snap)
    for d, (t, x) in data.items():
        alone = StreamClassifier(SPEC, MockClassifier(), SMOOTH, device=d)
        want = comparable(alone.push_events(t, x, 0.0))
        assert comparable([e for e in events if e.device == d]) == want
        assert snap["per_device"][d] == alone.counters.to_dict()
    assert snap["predictions"] > 0


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 200), sizes=st.lists(st.integers(1, SMALL + 3), min_size=1, max_size=12),
       which=st.integers(0, len(SPECS) - 1), seed=st.integers(0, 2**16))
def test_windows_from_small_pushes_of_rows_equal_the_batch_path(n, sizes, which, seed):
    # Rows as Python lists (what the small resampler path hands on), in every acc_mode: the
    # float32 buffer of "total" mode and the float64 one of the gravity modes.
    spec = SPECS[which]
    frames = np.random.default_rng(seed).normal(size=(n, len(spec.channels)))
    batch = make_windows(frames, spec)
    w = Windower(spec)
    got, ends = [], []
    for a, b in _small_chunks(n, sizes):
        first = w.count
        windows, first_end = w.push_windows(frames[a:b].tolist())
        if windows is not None:
            got.append(windows)
            ends += range(first_end, first_end + spec.hop * len(windows), spec.hop)
            assert first <= first_end < w.count
    assert (np.concatenate(got) if got else batch.windows[:0]).tobytes() == \
        batch.windows.tobytes()
    assert ends == batch.end_index.tolist()


def test_an_empty_push_after_the_start_changes_nothing():
    stream = StreamClassifier(SPEC, MockClassifier(), SMOOTH)
    t, x = _device_stream(3, 4.0)
    stream.push_events(t[:10], x[:10], 0.0)
    before = stream.counters.to_dict()
    assert stream.push_events(t[:0], x[:0], 0.0) == []
    assert stream.counters.to_dict() == before
    r = StreamResampler(RATE, GAP)
    r.push(t[:5], x[:5])
    assert r.push_rows(t[:0], x[:0]) is None and r.push(t[:0], x[:0]) == []
