"""The learned context head in the runtime (har_runtime.recurrent_context), TF-free: the golden
bundle's head streams what it streamed at generation time, in any chunk sizes; its state is
zeroed on a gap and kept per device; a bundle that lists the head wrongly is refused.

tests/data_golden/bundle_context and stream_context.npz come from
`python -m scripts.make_golden_bundle --part context`.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from har_runtime.bundle import BundleError, load_bundle
from har_runtime.recurrent_context import (RecurrentContext, RecurrentContextError,
                                           RecurrentHead, RecurrentState, head_features)
from har_runtime.stream import StreamClassifier

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden"
BUNDLE = GOLDEN / "bundle_context"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(BUNDLE)


@pytest.fixture(scope="module")
def recording():
    with np.load(GOLDEN / "stream_context.npz") as data:
        return {key: data[key] for key in data.files}


def _probs(predictions, labels):
    return np.asarray([[p.probabilities[name] for name in labels] for p in predictions])


def _streamed(bundle, classifier, t, x, cuts, device="d"):
    stream = StreamClassifier(bundle.spec, classifier, bundle.smoothing, device=device)
    bounds = sorted({0, len(t), *[c % (len(t) + 1) for c in cuts]})
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        out.extend(stream.push(t[a:b], x[a:b]))
    return out


def test_the_bundle_carries_a_recurrent_head(bundle):
    assert bundle.schema_version == 3 and isinstance(bundle.context, RecurrentContext)
    assert bundle.context.parity["agreement"] == 1.0
    assert isinstance(bundle.open("int8").context, RecurrentHead)


def test_the_stream_emits_what_it_emitted_at_generation(bundle, recording):
    got = _probs(_streamed(bundle, bundle.open("float32"), recording["t"], recording["x"], []),
                 bundle.labels)
    want = recording["context_float32"]
    assert got.shape == want.shape and len(got) > 30
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()


def test_the_int8_stream_stays_close_to_generation(bundle, recording):
    """Interpreter builds may round an int8 output one quantum apart (test_bundle.py allows
    that); the head's log features magnify such a step at small probabilities, so the
    context outputs are compared within a looser bound than the float32 ones."""
    got = _probs(_streamed(bundle, bundle.open("int8"), recording["t"], recording["x"], []),
                 bundle.labels)
    want = recording["context_int8"]
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 0.05
    assert np.mean(got.argmax(axis=1) == want.argmax(axis=1)) >= 0.95


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=15))
def test_any_chunking_gives_the_offline_outputs(bundle, recording, cuts):
    classifier = bundle.open("int8")
    t, x = recording["t"], recording["x"]
    streamed = _streamed(bundle, classifier, t, x, cuts)
    offline = StreamClassifier(bundle.spec, classifier, bundle.smoothing).classify_recording(t, x)
    assert [(p.t_end, p.probabilities) for p in streamed] == \
        [(p.t_end, p.probabilities) for p in offline]


def test_a_gap_zeroes_the_state(bundle, recording):
    classifier = bundle.open("int8")
    t, x = recording["t"].copy(), recording["x"]
    half = len(t) // 2
    t[half:] += 5.0
    whole = _streamed(bundle, classifier, t, x, [])
    fresh = _streamed(bundle, classifier, t[half:], x[half:], [])
    tail = [p for p in whole if p.t_end >= t[half]]
    assert [p.probabilities for p in tail] == [p.probabilities for p in fresh]
    unbroken = _streamed(bundle, classifier, recording["t"], x, [])
    late = [p for p in unbroken if p.t_end >= recording["t"][half] + 2.56]
    # Without the gap the same windows are answered with the past in the state.
    assert [p.probabilities for p in late][:5] != [p.probabilities for p in fresh][:5]


def test_each_device_keeps_its_own_state(bundle, recording):
    classifier = bundle.open("int8")  # one head interpreter for both streams, as in the daemon
    t, x = recording["t"], recording["x"]
    xb = x[::-1].copy()
    alone = [_streamed(bundle, classifier, t, x, []), _streamed(bundle, classifier, t, xb, [])]
    streams = [StreamClassifier(bundle.spec, classifier, bundle.smoothing, device=d)
               for d in ("a", "b")]
    mixed = [[], []]
    for i in range(0, len(t), 37):
        mixed[0] += streams[0].push(t[i:i + 37], x[i:i + 37])
        mixed[1] += streams[1].push(t[i:i + 37], xb[i:i + 37])
    for got, want in zip(mixed, alone):
        assert [p.probabilities for p in got] == [p.probabilities for p in want]


def test_a_nan_output_passes_through_and_restarts_the_state(bundle):
    head = bundle.context_runner()
    state = RecurrentState(head)
    k = len(bundle.labels)
    first = state.update([1.0 / k] * k)
    second = state.update([1.0 / k] * k)
    assert second != first  # the state moved
    assert all(np.isnan(state.update([float("nan")] * k)))
    assert state.update([1.0 / k] * k) == first  # started afresh, no reset() needed


def test_the_features_are_floored_logs():
    f = head_features(np.array([[0.0, 0.5, 1.0]]), 1e-4)
    np.testing.assert_allclose(f, np.log([[1e-4, 0.5, 1.0]]), rtol=1e-6)
    assert f.dtype == np.float32


def _copy_with(tmp_path, change):
    root = Path(shutil.copytree(BUNDLE, tmp_path / "b"))
    doc = json.loads((root / "bundle.json").read_text())
    change(doc)
    (root / "bundle.json").write_text(json.dumps(doc))
    return root


def test_a_head_missing_from_files_is_refused(tmp_path):
    root = _copy_with(tmp_path, lambda doc: doc["files"].pop("context.tflite"))
    with pytest.raises(BundleError, match="not listed in files"):
        load_bundle(root)


def test_a_head_of_the_wrong_width_is_refused_when_opened(tmp_path):
    def wider(doc):
        doc["context"]["state_size"] += 1

    bundle = load_bundle(_copy_with(tmp_path, wider))
    with pytest.raises(BundleError, match="expected float32 inputs"):
        bundle.open("int8")


@pytest.mark.parametrize("change, message", [
    ({"method": "posture_hmm"}, "method"),
    ({"state_size": 6}, "differ from the 6 labels"),
    ({"state_size": "8"}, "integer"),
    ({"floor": 2.0}, "floor"),
    ({"extra": 1}, "unknown"),
])
def test_malformed_settings_are_refused(bundle, change, message):
    data = {**bundle.context.to_dict(), **change}
    with pytest.raises(RecurrentContextError, match=message):
        RecurrentContext.from_dict(data)
