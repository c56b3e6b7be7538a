"""The daemon runs a bundle's temporal context with one belief per device, restarted on gaps:
interleaved devices get exactly what each would get alone (the offline path with context)."""
import numpy as np

from har_runtime.contract.results import Prediction
from har_runtime.daemon.model import Model
from har_runtime.stream import StreamClassifier
from test_context import ContextMock
from test_daemon_engine import SMOOTH, chunks, csv_lines, device_data, run_server
from test_stream_mock import SPEC, MockClassifier


def _expected(device, t, x):
    sc = StreamClassifier(SPEC, ContextMock(), SMOOTH, device=device)
    return [(p.t_end, p.label, p.probabilities, p.smoothed_label)
            for p in sc.classify_recording(t, x)]


def test_each_device_has_its_own_context_and_a_gap_restarts_it():
    rng = np.random.default_rng(1)
    data = {d: device_data(i, seconds=30.0) for i, d in enumerate(["wrist", "ankle"])}
    t, x = data["ankle"]
    t[len(t) // 2:] += 3.0  # a gap on one device only
    per_device = {d: csv_lines(d, *tx) for d, tx in data.items()}
    lines = [line for group in zip(*per_device.values()) for line in group]
    classifier = ContextMock()  # one classifier shared by every stream, as the daemon's is
    status, events, _ = run_server(chunks(lines, rng),
                                   loader=lambda: Model(SPEC, classifier, SMOOTH, "ctx"))
    assert status == 0
    plain = StreamClassifier(SPEC, MockClassifier(), SMOOTH)  # same weights, no context
    for device, (t, x) in data.items():
        want = _expected(device, t, x)
        got = [(e.t_end, e.label, e.probabilities, e.smoothed_label) for e in events
               if isinstance(e, Prediction) and e.device == device]
        assert got == want and len(got) > 10
        raw = plain.classify_recording(t, x)
        assert [p.probabilities for p in raw] != [g[2] for g in got]  # the context ran


def test_the_daemon_runs_a_learned_head_per_device():
    """The golden bundle's recurrent head, one interpreter for every device: interleaved
    devices, one with a gap, each get what the offline path gives it alone."""
    from pathlib import Path

    from har_runtime.bundle import load_bundle

    bundle = load_bundle(Path(__file__).resolve().parents[1] / "data_golden" / "bundle_context")
    with np.load(Path(bundle.path).parent / "stream_context.npz") as d:
        t0, x0 = d["t"], d["x"].astype(np.float64)
    data = {"left": (t0.copy(), x0), "right": (t0.copy(), x0[::-1].copy())}
    data["right"][0][len(t0) // 2:] += 3.0  # a gap on one device only
    classifier = bundle.open("int8")
    status, events, _ = run_server(
        chunks([line for pair in zip(*(csv_lines(d, *tx) for d, tx in data.items()))
                for line in pair], np.random.default_rng(4)),
        loader=lambda: Model(bundle.spec, classifier, bundle.smoothing, "learned"))
    assert status == 0
    for device, (t, x) in data.items():
        sc = StreamClassifier(bundle.spec, classifier, bundle.smoothing, device=device)
        want = [(p.t_end, p.label, p.probabilities) for p in sc.classify_recording(t, x)]
        got = [(e.t_end, e.label, e.probabilities) for e in events
               if isinstance(e, Prediction) and e.device == device]
        assert got == want and len(got) > 20
