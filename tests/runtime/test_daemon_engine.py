"""Daemon core in-process (mock classifier): routing, limits, accounting, reload, the loop."""
import io
import json

import numpy as np
import pytest

from har_runtime.contract.results import ActivityChange, Prediction
from har_runtime.contract.smoothing import SmoothingSettings
from har_runtime.daemon.engine import Engine, EngineSettings
from har_runtime.daemon.model import Model, ModelLoadFailed, SmoothingOverrides
from har_runtime.daemon.server import Server
from har_runtime.daemon.sinks import MemorySink
from har_runtime.daemon.sources import MemorySource
from har_runtime.stream import StreamClassifier
from test_stream_mock import SPEC, MockClassifier, activity_signal, jittered_times

SMOOTH = SmoothingSettings(k=3, min_confidence=0.5, hysteresis=2)


def mock_model(description="mock"):
    return Model(SPEC, MockClassifier(), SMOOTH, description)


def csv_lines(device, t, x):
    prefix = f"{device}," if device else ""
    return [f"{prefix}{ti!r},{a!r},{b!r},{c!r}\n".encode() for ti, (a, b, c) in zip(t, x)]


def device_data(seed, seconds=20.0):
    x = activity_signal(seconds, seed=seed)
    return jittered_times(len(x), seed=seed), x


def expected(device, t, x):
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH, device=device)
    return [(p.t_end, p.label, p.smoothed_label) for p in sc.classify_recording(t, x)]


def got(events, device):
    return [(e.t_end, e.label, e.smoothed_label) for e in events
            if isinstance(e, Prediction) and e.device == device]


def chunks(lines, rng, origin="mem"):
    data = b"".join(lines)
    cuts = sorted(set(rng.integers(0, len(data), size=len(lines) // 5).tolist()))
    return [(origin, data[a:b]) for a, b in zip([0] + cuts, cuts + [len(data)])]


def run_server(chunks_, settings=EngineSettings(), max_line=4096, loader=mock_model):
    log = io.StringIO()
    sink = MemorySink()
    engine = Engine(loader, settings)
    status = Server(MemorySource(chunks_, max_line), engine, sink, stats_interval=0,
                    log=log).run()
    logs = [json.loads(line) for line in log.getvalue().splitlines()]
    return status, sink.events, logs


def check_accounting(c):
    assert c["lines"] == c["samples"] + c["malformed"] + c["skipped"]
    assert c["samples"] == c["samples_in"] + c["refused_samples"] + c["implausible"]
    assert c["samples_in"] == c["accepted"] + c["nonfinite"] + c["out_of_order"]
    assert c["frames"] == c["advanced"] + c["discarded"] + c["buffered"]
    assert c["windows"] == c["predictions"]


def test_one_prediction_per_window_for_interleaved_devices_despite_garbage():
    rng = np.random.default_rng(0)
    data = {d: device_data(i) for i, d in enumerate(["wrist", "ankle", "pi:3"])}
    per_device = {d: csv_lines(d, *tx) for d, tx in data.items()}
    lines = [line for group in zip(*per_device.values()) for line in group]
    junk = [b"garbage\n", b"1,2,nan,4\n", b"x" * 5000 + b"\n", b"# note\n",
            b'{"t": 1, "acc": [1, 2]}\n', b"wrist,1,2\n"]
    for i, j in enumerate(junk):
        lines.insert(100 + 400 * i, j)
    status, events, logs = run_server(chunks(lines, rng))
    assert status == 0
    for device, (t, x) in data.items():
        assert got(events, device) == expected(device, t, x)
    final = logs[-1]
    assert final["event"] == "final" and logs[0]["event"] == "start"
    assert (final["malformed"], final["overlong"], final["skipped"], final["nonfinite"]) == \
        (3, 1, 1, 1)
    # The NaN line names no device, so it belongs to the connection's default device.
    assert final["devices"] == 4 and set(final["per_device"]) == set(data) | {"mem"}
    assert final["predictions"] == sum(isinstance(e, Prediction) for e in events)
    check_accounting(final)


def test_json_lines_and_connection_default_device():
    t, x = device_data(4)
    lines = [json.dumps({"t": ti, "acc": list(xi)}).encode() + b"\n" for ti, xi in zip(t, x)]
    status, events, _ = run_server(chunks(lines, np.random.default_rng(1), origin="tcp:1.2.3.4"))
    assert got(events, "tcp:1.2.3.4") == expected("tcp:1.2.3.4", t, x)


def test_changes_only_and_device_buffer_do_not_change_results():
    t, x = device_data(5, seconds=40.0)
    lines = csv_lines("d", t, x)
    _, every, _ = run_server(chunks(lines, np.random.default_rng(2)))
    _, changes, logs = run_server(chunks(lines, np.random.default_rng(3)),
                                  EngineSettings(emit="changes", device_buffer=7))
    assert all(isinstance(e, ActivityChange) for e in changes) and len(changes) >= 2
    assert changes == [e for e in every if isinstance(e, ActivityChange)]
    assert logs[-1]["changes"] == len(changes)


@pytest.mark.parametrize("policy", ["evict", "refuse"])
def test_max_devices_bounds_state(policy):
    streams = {d: csv_lines(d, *device_data(i, 5.0)) for i, d in enumerate("abc")}
    # a and b first, then c arrives while both are live, then a again.
    phases = [streams["a"][:100], streams["b"][:100], streams["c"], streams["a"][100:]]
    _, events, logs = run_server([("m", b"".join(p)) for p in phases],
                                 EngineSettings(max_devices=2, device_policy=policy))
    final = logs[-1]
    assert final["devices"] == 2
    check_accounting(final)
    if policy == "evict":
        assert final["evicted"] == 2 and final["refused_samples"] == 0  # a, then b went
        assert got(events, "c") and final["discarded"] > 0
        assert set(final["per_device"]) == {"c", "a"}
    else:
        assert final["evicted"] == 0 and final["refused_samples"] == len(streams["c"])
        assert not got(events, "c")


def test_reload_keeps_old_model_on_failure_and_swaps_on_success():
    calls = []

    def loader():
        calls.append(1)
        if len(calls) == 2:
            raise ModelLoadFailed("bundle.json: sha256 mismatch", "bundle")
        return mock_model(f"mock#{len(calls)}")

    engine = Engine(loader)
    assert engine.reload() == (False, "bundle.json: sha256 mismatch")
    assert engine.model.description == "mock#1"
    t, x = device_data(6, 5.0)
    from har_runtime.daemon.sources import Received
    engine.feed(Received(csv_lines("d", t, x), "m", 0.0))
    assert engine.device_ids() == ["d"]
    assert engine.reload() == (True, "mock#3")
    assert engine.device_ids() == []  # state rebuilt for the new model
    snap = engine.snapshot()
    assert (snap["reloads"], snap["reload_failures"], snap["model"]) == (1, 1, "mock#3")
    check_accounting(snap)


def test_settings_and_overrides_are_validated():
    with pytest.raises(ValueError):
        EngineSettings(max_devices=0)
    with pytest.raises(ValueError):
        EngineSettings(device_policy="random")
    assert SmoothingOverrides(k=9).apply(SMOOTH) == SmoothingSettings(k=9, min_confidence=0.5,
                                                                      hysteresis=2)
    with pytest.raises(ValueError):
        SmoothingOverrides(min_confidence=2.0).apply(SMOOTH)
