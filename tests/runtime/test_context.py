"""Temporal context (har_runtime.context): the posture tracker's matrix and belief, its state in
the stream (any chunking == the offline path, reset on gaps, one belief per device) and the
bundle.json `context` field (schema 3). No TensorFlow: runs in the tflite-runtime venv."""
import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from har_runtime.bundle import BundleError, load_bundle
from har_runtime.context import ContextError, ContextFilter, ContextState, posture_filter
from har_runtime.stream import StreamClassifier
from test_stream_mock import (GOLDEN_BUNDLE, SPEC, MockClassifier,
                              activity_signal, jittered_times)

LABELS12 = ("walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying",
            "stand_to_sit", "sit_to_stand", "sit_to_lie", "lie_to_sit", "stand_to_lie",
            "lie_to_stand")
LABELS6 = LABELS12[:6]


def test_postures_are_entered_through_their_transitions():
    f = posture_filter(LABELS12)
    t = np.asarray(f.transition)
    i = {n: k for k, n in enumerate(LABELS12)}
    assert np.allclose(t.sum(axis=1), 1.0)
    assert t[i["sitting"], i["sit_to_stand"]] > 10 * t[i["sitting"], i["standing"]]
    assert t[i["stand_to_sit"], i["sitting"]] > t[i["stand_to_sit"], i["standing"]]
    assert t[i["sitting"], i["sitting"]] > 0.7 and np.all(t > 0)  # the leak: nothing impossible


def test_without_transition_classes_the_postures_follow_each_other_directly():
    t = np.asarray(posture_filter(LABELS6).transition)
    sitting, standing, laying = 3, 4, 5
    assert t[sitting, standing] > 0.05 and t[sitting, laying] > 0.05
    assert t[sitting, 0] < 0.01  # walking still only from standing


def test_the_belief_carries_a_posture_over_ambiguous_windows_until_reset():
    state = ContextState(posture_filter(LABELS6))
    sit = [0.0, 0.0, 0.0, 0.9, 0.1, 0.0]
    unsure = [0.0, 0.0, 0.0, 0.45, 0.55, 0.0]
    for _ in range(5):
        state.update(sit)
    out = state.update(unsure)
    assert pytest.approx(sum(out)) == 1.0 and int(np.argmax(out)) == 3
    state.reset()
    assert int(np.argmax(state.update(unsure))) == 4


def test_a_nan_window_passes_through_and_restarts_the_belief():
    state = ContextState(posture_filter(LABELS6))
    state.update([0.0, 0.0, 0.0, 0.9, 0.1, 0.0])
    out = state.update([float("nan")] * 6)
    assert all(v != v for v in out)
    fresh = state.update([0.0, 0.0, 0.0, 0.45, 0.55, 0.0])
    assert int(np.argmax(fresh)) == 4


@pytest.mark.parametrize("data, message", [
    ({"method": "hmm"}, "method"),
    ({"method": "posture_hmm", "labels": ["a", "b"], "transition": [[1, 0]]}, "2 x 2"),
    ({"method": "posture_hmm", "labels": ["a", "b"], "transition": [[0.5, 0.6], [0, 1]]},
     "sum to 1"),
    ({"method": "posture_hmm", "labels": ["a", "b"], "transition": [[1, 0], [0, 1]],
      "power": 0}, "power"),
    ({"method": "posture_hmm", "labels": ["a", "b"], "transition": [["x", 0], [0, 1]]},
     "numbers"),
    ({"method": "posture_hmm", "labels": ["a", "b"], "transition": [[1, 0], [0, 1]],
      "extra": 1}, "unknown"),
])
def test_malformed_settings_are_refused(data, message):
    with pytest.raises(ContextError, match=message):
        ContextFilter.from_dict(data)


class ContextMock(MockClassifier):
    """The mock classifier carrying a context, as a classifier from `Bundle.open` does."""

    def __init__(self):
        super().__init__()
        self.context = posture_filter(SPEC.labels, leave=0.1, leak=0.01)


def _stream_predictions(times, samples, cuts, device="d"):
    stream = StreamClassifier(SPEC, ContextMock(), device=device)
    bounds = sorted({0, len(times), *[c % (len(times) + 1) for c in cuts]})
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        out.extend(stream.push(times[a:b], samples[a:b]))
    return out


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=20), seed=st.integers(0, 50))
def test_stream_in_any_chunks_equals_the_offline_path_with_context(cuts, seed):
    samples = activity_signal(30, seed=seed)
    times = jittered_times(len(samples), seed=seed)
    times[len(times) // 2:] += 2.0  # a gap: the belief must restart on both paths
    streamed = _stream_predictions(times, samples, cuts)
    offline = StreamClassifier(SPEC, ContextMock()).classify_recording(times, samples)
    assert [(p.t_end, p.label, p.probabilities, p.smoothed_label) for p in streamed] == \
        [(p.t_end, p.label, p.probabilities, p.smoothed_label) for p in offline]


def test_the_context_changes_predictions_and_restarts_after_a_gap():
    samples = activity_signal(40, seed=3)
    times = jittered_times(len(samples), seed=3)
    half = len(times) // 2
    times[half:] += 5.0
    with_context = StreamClassifier(SPEC, ContextMock()).push(times, samples)
    raw = StreamClassifier(SPEC, MockClassifier()).push(times, samples)
    assert [p.probabilities for p in with_context] != [p.probabilities for p in raw]
    after_gap = StreamClassifier(SPEC, ContextMock()).push(times[half:], samples[half:])
    tail = [p for p in with_context if p.t_end >= times[half]]
    assert [p.probabilities for p in tail] == [p.probabilities for p in after_gap]


def test_each_device_keeps_its_own_belief():
    a, b = activity_signal(20, seed=1), activity_signal(20, seed=2)
    ta, tb = jittered_times(len(a), seed=1), jittered_times(len(b), seed=2)
    alone = [_stream_predictions(ta, a, []), _stream_predictions(tb, b, [])]
    classifier = ContextMock()  # one classifier shared by both streams, as in the daemon
    streams = [StreamClassifier(SPEC, classifier, device=d) for d in ("a", "b")]
    mixed = [[], []]
    for i in range(0, len(ta), 25):
        mixed[0] += streams[0].push(ta[i:i + 25], a[i:i + 25])
        mixed[1] += streams[1].push(tb[i:i + 25], b[i:i + 25])
    for got, want in zip(mixed, alone):
        assert [p.probabilities for p in got] == [p.probabilities for p in want]


def _golden_with(tmp_path, change):
    root = shutil.copytree(GOLDEN_BUNDLE, tmp_path / "bundle")
    path = root / "bundle.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return root


def _add_context(doc, version=3):
    doc["schema_version"] = version
    doc["context"] = posture_filter(doc["labels"]).to_dict()


def test_a_context_bundle_loads_and_its_classifier_carries_the_context(tmp_path):
    bundle = load_bundle(_golden_with(tmp_path, _add_context))
    assert bundle.schema_version == 3 and bundle.context == posture_filter(bundle.labels)
    clf = bundle.open()
    assert clf.context == bundle.context
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.3, (3000, len(bundle.spec.channels))) + [1.0, 0.0, 0.0][
        :len(bundle.spec.channels)]
    times = np.arange(3000) / bundle.spec.sample_rate_hz
    preds = StreamClassifier(bundle.spec, clf).push(times, samples)
    raw = StreamClassifier(bundle.spec, load_bundle(GOLDEN_BUNDLE).open()).push(times, samples)
    assert len(preds) == len(raw) > 5
    assert [p.probabilities for p in preds] != [p.probabilities for p in raw]


def test_inspect_shows_the_context(tmp_path):
    pytest.importorskip("tensorflow", reason="har-export inspect reads .tflite files with TF")
    inspect = pytest.importorskip("har_export.inspect_bundle")
    bundle = load_bundle(_golden_with(tmp_path, _add_context))
    assert "context     posture tracker over the window outputs" in \
        inspect.describe_bundle(bundle)
    assert "context     none" in inspect.describe_bundle(load_bundle(GOLDEN_BUNDLE))


def test_old_bundles_and_a_context_in_a_version_2_bundle_run_without_context(tmp_path):
    assert load_bundle(GOLDEN_BUNDLE).context is None
    assert load_bundle(GOLDEN_BUNDLE).open().context is None
    v2 = load_bundle(_golden_with(tmp_path, lambda doc: _add_context(doc, version=2)))
    assert v2.context is None


@pytest.mark.parametrize("change, message", [
    (lambda doc: doc.update(schema_version=3), "needs a context"),
    (lambda doc: (_add_context(doc), doc["context"].update(labels=doc["labels"][::-1])),
     "labels"),
    (lambda doc: (_add_context(doc), doc["context"].update(power=-1)), "power"),
])
def test_bad_context_bundles_are_refused(tmp_path, change, message):
    with pytest.raises(BundleError, match=message):
        load_bundle(_golden_with(tmp_path, change))
