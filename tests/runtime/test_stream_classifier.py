"""StreamClassifier: live streaming equals the offline path, units, gaps, counters, events."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from har_runtime.contract.results import ActivityChange, Prediction
from har_runtime.contract.smoothing import SmoothingSettings
from har_runtime.stream import StreamClassifier, offline_windows
from test_stream_mock import SPEC, MockClassifier, activity_signal, jittered_times

SMOOTH = SmoothingSettings(k=3, min_confidence=0.5, hysteresis=2)


def key(p: Prediction):
    return (p.device, p.t_end, p.label, p.smoothed_label, tuple(p.probabilities.items()))


def stream_in_chunks(sc, t, x, rng, max_chunk=40):
    out, i = [], 0
    while i < len(t):
        n = int(rng.integers(1, max_chunk + 1))
        out.extend(sc.push(t[i:i + n], x[i:i + n]))
        i += n
    return out


def check_accounting(c):
    assert c.samples_in == c.accepted + c.nonfinite + c.out_of_order
    assert c.frames == c.advanced + c.discarded + c.buffered
    assert c.windows == c.predictions


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_jittered_chunked_stream_equals_offline(seed):
    rng = np.random.default_rng(seed)
    x = activity_signal(30.0, seed=seed % 5)
    t = jittered_times(len(x), jitter=0.2, seed=seed)
    live = stream_in_chunks(StreamClassifier(SPEC, MockClassifier(), SMOOTH), t, x, rng)
    offline = StreamClassifier(SPEC, MockClassifier(), SMOOTH).classify_recording(t, x)
    assert len(live) == len(offline) == 1 + (int((t[-1] - t[0]) * 50) + 1 - 32) // 16
    assert [key(p) for p in live] == [key(p) for p in offline]
    assert len({p.smoothed_label for p in live}) > 1


def test_stream_batches_all_completed_windows_in_one_call():
    x = activity_signal(10.0)
    clf = MockClassifier()
    sc = StreamClassifier(SPEC, clf, SMOOTH)
    preds = sc.push(np.arange(len(x)) / 50.0, x)
    assert clf.calls == [len(preds)] and len(preds) == 1 + (500 - 32) // 16


def test_metres_per_second_squared_give_the_same_predictions():
    x = activity_signal(30.0, seed=3)
    t = jittered_times(len(x), seed=3)
    in_g = StreamClassifier(SPEC, MockClassifier(), SMOOTH).push(t, x)
    in_ms2 = StreamClassifier(SPEC, MockClassifier(), SMOOTH, source_acc_unit="m/s2").push(
        t, x * 9.80665)
    assert [(p.t_end, p.label, p.smoothed_label) for p in in_g] == \
        [(p.t_end, p.label, p.smoothed_label) for p in in_ms2]
    a = np.array([list(p.probabilities.values()) for p in in_g])
    b = np.array([list(p.probabilities.values()) for p in in_ms2])
    assert np.allclose(a, b, atol=1e-5)
    # A unit mix-up must be visible, otherwise the comparison above proves nothing.
    wrong = StreamClassifier(SPEC, MockClassifier(), SMOOTH).push(t, x * 9.80665)
    c = np.array([list(p.probabilities.values()) for p in wrong])
    assert not np.allclose(a, c, atol=1e-2)


def test_gyro_degrees_are_converted():
    spec6 = SPEC.__class__(window=32, hop=16, labels=SPEC.labels, label_ids=SPEC.label_ids,
                           channels=("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"))
    x = activity_signal(12.0, channels=6, seed=2)
    t = np.arange(len(x)) / 50.0
    rad = StreamClassifier(spec6, MockClassifier(spec6), SMOOTH).push(t, x)
    deg = StreamClassifier(spec6, MockClassifier(spec6), SMOOTH, source_gyro_unit="deg/s").push(
        t, np.concatenate([x[:, :3], np.degrees(x[:, 3:])], axis=1))
    assert np.allclose([p.confidence for p in rad], [p.confidence for p in deg], atol=1e-5)


def test_gap_resets_windows_and_smoothing():
    x = activity_signal(40.0, seed=0)  # the activity changes at the gap, so stale state shows
    t = np.arange(len(x)) / 50.0
    t[1000:] += 3.0  # a 3 s dropout after 20 s
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH)
    preds = stream_in_chunks(sc, t, x, np.random.default_rng(0))
    gap_start, gap_end = t[999], t[1000]
    span = (SPEC.window - 1) / SPEC.sample_rate_hz
    for p in preds:
        assert p.t_end <= gap_start or p.t_end - span >= gap_end - 1e-9
    assert sc.counters.gaps == 1
    after = [key(p) for p in preds if p.t_end > gap_start]
    fresh = StreamClassifier(SPEC, MockClassifier(), SMOOTH).classify_recording(t[1000:], x[1000:])
    assert after == [key(p) for p in fresh]  # windower and smoother both started afresh
    one_push = StreamClassifier(SPEC, MockClassifier(), SMOOTH).push(t, x)  # gap inside a batch
    assert [key(p) for p in one_push] == [key(p) for p in preds]
    check_accounting(sc.counters)
    assert sc.counters.discarded == sc.counters.frames - sc.counters.advanced - \
        sc.counters.buffered > 0


def test_nan_duplicates_and_reordering_are_counted_and_skipped():
    x = activity_signal(10.0)
    t = np.arange(len(x)) / 50.0
    x[[10, 200]] = np.nan
    # Two duplicates and one late sample (0.18 s late: reordering, not a clock reset).
    t = np.insert(t, [50, 51, 300], [t[49], t[50], t[290]])
    x = np.insert(x, [50, 51, 300], x[[49, 50, 290]], axis=0)
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH)
    preds = stream_in_chunks(sc, t, x, np.random.default_rng(1))
    c = sc.counters
    assert (c.samples_in, c.nonfinite, c.out_of_order, c.accepted) == (503, 2, 3, 498)
    assert all(np.isfinite(list(p.probabilities.values())).all() for p in preds)
    check_accounting(c)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(0, 900))
def test_accounting_holds_for_hostile_streams(seed, n):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.choice([0.02, 0.02, 0.02, 0.0, -0.05, 0.9], size=n)) + 50.0
    x = rng.normal(size=(n, 3))
    x[rng.random(n) < 0.03] = np.nan
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH)
    preds = stream_in_chunks(sc, t, x, rng, max_chunk=60)
    check_accounting(sc.counters)
    assert sc.counters.predictions == len(preds)
    off = offline_windows(SPEC, t, x)
    assert np.array_equal([p.t_end for p in preds], off.t_end)


def test_change_events_follow_the_smoothed_label():
    x = activity_signal(60.0, seed=1)
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH, device="d7")
    events = sc.push_events(np.arange(len(x)) / 50.0, x)
    current, changes = "unknown", 0
    for i, e in enumerate(events):
        if isinstance(e, ActivityChange):
            before = events[i - 1]
            assert isinstance(before, Prediction) and e.t == before.t_end
            assert (e.previous, e.current) == (current, before.smoothed_label)
            current, changes = e.current, changes + 1
        else:
            assert e.smoothed_label == current or isinstance(events[i + 1], ActivityChange)
    assert changes >= 2 and sc.activity == current


def test_results_serialise_to_one_json_line():
    x = activity_signal(5.0)
    events = StreamClassifier(SPEC, MockClassifier(), SMOOTH, device="pi-1").push_events(
        np.arange(len(x)) / 50.0, x)
    pred = json.loads(events[0].to_json())
    assert pred["type"] == "prediction" and pred["device"] == "pi-1"
    assert set(pred["probabilities"]) == set(SPEC.labels)
    assert 0 <= pred["latency_s"] < 1.0
    change = json.loads(events[1].to_json())
    assert change["type"] == "change" and change["previous"] == "unknown"
    assert "\n" not in events[0].to_json()


def test_bad_input_shapes_and_units_are_refused():
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH)
    with pytest.raises(ValueError, match="samples must be"):
        sc.push(np.arange(4.0), np.zeros((4, 6)))
    with pytest.raises(ValueError, match="windows must be"):
        sc.classify_windows(np.zeros((2, 31, 3), np.float32))
    with pytest.raises(ValueError, match="unknown acc unit"):
        StreamClassifier(SPEC, MockClassifier(), SMOOTH, source_acc_unit="furlongs")


def test_reset_starts_the_stream_afresh_and_keeps_accounting():
    x = activity_signal(10.0)
    t = np.arange(len(x)) / 50.0
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH)
    first = sc.push(t[:250], x[:250])
    sc.reset()
    again = sc.push(t[:250], x[:250])  # same timestamps again are not "out of order" now
    assert [key(p) for p in first] == [key(p) for p in again]
    check_accounting(sc.counters)


@pytest.mark.parametrize("variant", ["recommended", "all"])
def test_real_tflite_stream_equals_offline(variant):
    from har_runtime.bundle import load_bundle
    from har_train.data.synthetic import synthetic_recording
    from test_stream_mock import golden_bundle

    bundle = load_bundle(golden_bundle())
    names = [bundle.recommended] if variant == "recommended" else list(bundle.variants)
    rec = synthetic_recording(3, seconds_per_activity=10.0)
    x = rec.frames(bundle.spec.channels)
    t = jittered_times(len(x), jitter=0.2, seed=11)
    for name in names:
        clf = bundle.open(name, allow_undeployable=True)
        live = stream_in_chunks(StreamClassifier(bundle.spec, clf, bundle.smoothing), t, x,
                                np.random.default_rng(5), max_chunk=70)
        offline = StreamClassifier(bundle.spec, clf, bundle.smoothing).classify_recording(t, x)
        assert [(p.t_end, p.label, p.smoothed_label) for p in live] == \
            [(p.t_end, p.label, p.smoothed_label) for p in offline]
        a = np.array([list(p.probabilities.values()) for p in live])
        b = np.array([list(p.probabilities.values()) for p in offline])
        assert np.allclose(a, b, atol=1e-5), name
