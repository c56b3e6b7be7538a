"""Hostile values: implausible magnitudes, strict numbers, timestamp units, warnings, latency."""
import json
import time

import numpy as np
import pytest

from har_runtime.contract.results import Prediction
from har_runtime.contract.spec import ALL_CHANNELS, PreprocessSpec
from har_runtime.daemon.engine import Engine, EngineSettings
from har_runtime.daemon.lines import LineError, LineParser
from har_runtime.daemon.model import Model
from har_runtime.daemon.sources import Received
from har_runtime.stream import StreamClassifier
from test_daemon_engine import (SMOOTH, check_accounting, chunks, csv_lines, device_data, got,
                                mock_model, run_server)
from test_stream_mock import SPEC, MockClassifier

SPEC6 = PreprocessSpec(window=32, hop=16, labels=SPEC.labels, label_ids=SPEC.label_ids,
                       channels=ALL_CHANNELS)


def expected_in(device, t, x, acc_unit="g"):
    sc = StreamClassifier(SPEC, MockClassifier(), SMOOTH, source_acc_unit=acc_unit, device=device)
    return [(p.t_end, p.label, p.smoothed_label) for p in sc.classify_recording(t, x)]


def with_spikes(device, t, x, spike, every=97):
    """CSV lines of (t, x) with a sample whose acc_x is `spike` between some of them."""
    out = []
    for i, line in enumerate(csv_lines(device, t, x)):
        out.append(line)
        if i % every == 50 and i + 1 < len(t):
            out.append(f"{device},{(t[i] + t[i + 1]) / 2!r},{spike},0.0,1.0\n".encode())
    return out


@pytest.mark.parametrize("acc_unit, spike", [("g", "1e30"), ("g", "-65"), ("g", "inf1"),
                                             ("m/s2", "640.0"), ("m/s2", "-1e300")])
def test_implausible_accelerations_are_counted_and_never_classified(acc_unit, spike):
    t, x = device_data(20, 20.0)
    if acc_unit == "m/s2":
        x = x * 9.80665
    lines = with_spikes("d", t, x, spike)
    status, events, logs = run_server(chunks(lines, np.random.default_rng(4)),
                                      EngineSettings(acc_unit=acc_unit))
    final = logs[-1]
    spikes = len(lines) - len(t)
    if spike == "inf1":  # not a number at all
        assert (final["malformed"], final["implausible"]) == (spikes, 0)
    else:
        assert (final["implausible"], final["samples_in"]) == (spikes, len(t))
    assert got(events, "d") == expected_in("d", t, x, acc_unit)
    check_accounting(final)


def test_the_bounds_are_64_g_and_8000_deg_per_s_in_the_senders_units():
    def implausible(settings, lines):
        engine = Engine(lambda: Model(SPEC6, MockClassifier(SPEC6), SMOOTH, "six"), settings)
        for fast in (True, False):  # the array path, then one line at a time
            batch = lines if fast else [b"# force the line path"] + lines
            engine.feed(Received(batch, "m", 0.0))
        return engine.counters.implausible // 2

    g = EngineSettings()
    assert implausible(g, [b"1.0,63.9,-63.9,0,0,0,0", b"1.1,0,64.1,0,0,0,0"]) == 1
    assert implausible(g, [b"1.2,0,0,0,139.6,0,0", b"1.3,0,0,0,0,0,-139.7"]) == 1
    deg = EngineSettings(acc_unit="m/s2", gyro_unit="deg/s")
    assert implausible(deg, [b"1.0,627,0,0,7999,0,0", b"1.1,628,0,0,0,0,0",
                             b"1.2,0,0,0,8001,0,0"]) == 2


@pytest.mark.parametrize("field", [b"1_0", b"\xd9\xa1\xd9\xa2", b"0x10", b"1e", b"--1",
                                   b"1.2.3", b"nan1", b"in f", b"\xef\xbc\x91"])
def test_numbers_use_a_strict_syntax_in_both_parse_paths(field):
    line = b"d,1.0," + field + b",0,1"
    with pytest.raises(LineError, match="not a number"):
        LineParser(SPEC.channels).parse(line)
    engine = Engine(mock_model)
    engine.feed(Received([line, b"d,1.02,0,0,1", b"d,1.04,0,0,1"], "m", 0.0))
    assert (engine.counters.malformed, engine.counters.samples) == (1, 2)


@pytest.mark.parametrize("field, value", [(b"-0.5", -0.5), (b"+.5", 0.5), (b"5.", 5.0),
                                          (b"1E-3", 1e-3), (b" 2 ", 2.0), (b"NaN", np.nan),
                                          (b"-inf", -np.inf), (b"Infinity", np.inf)])
def test_plain_numbers_and_nan_inf_words_are_accepted(field, value):
    sample = LineParser(SPEC.channels).parse(b"1.0," + field + b",0,1")
    np.testing.assert_equal(sample.values[0], value)
    block = LineParser(SPEC.channels).parse_block([b"1.0," + field.strip() + b",0,1"])
    np.testing.assert_equal(block.values[0, 0], value)


def unix_ms(t):
    return np.round((t - t[0]) * 1000.0) + 1_700_000_000_000.0


def time_lines(device, times, x):
    prefix = f"{device}," if device else ""
    return [f"{prefix}{ti!r},{a!r},{b!r},{c!r}\n".encode() for ti, (a, b, c) in zip(times, x)]


def test_millisecond_timestamps_with_time_unit_ms_are_classified():
    t, x = device_data(21, 20.0)
    t_ms = unix_ms(t)
    _, events, logs = run_server(chunks(time_lines("phone", t_ms, x), np.random.default_rng(5)),
                                 EngineSettings(time_unit="ms"))
    assert got(events, "phone") == expected_in("phone", t_ms / 1000.0, x)
    assert got(events, "phone") and "hint" not in logs[-1]


@pytest.mark.parametrize("unit, sent", [
    ("s", lambda t: unix_ms(t)),                      # Unix ms read as s: too large (nonfinite)
    ("s", lambda t: (t - t[0]) * 1000.0 + 5000.0),    # ms since boot read as s: all gaps
    ("ms", lambda t: unix_ms(t) * 1000.0),            # Unix us read as ms
    ("ms", lambda t: t),                              # seconds read as ms: absurdly dense
])
def test_timestamps_in_the_wrong_unit_get_a_hint(unit, sent):
    t, x = device_data(22, 20.0)
    _, events, logs = run_server(chunks(time_lines("phone", sent(t), x),
                                        np.random.default_rng(6)),
                                 EngineSettings(time_unit=unit))
    final = logs[-1]
    assert not got(events, "phone")
    assert "'phone'" in final["hint"] and f"--time-unit {unit}" in final["hint"]
    assert "milliseconds" in final["hint"]
    check_accounting(final)


def test_the_hint_outlives_a_connection_until_the_next_interval():
    t, x = device_data(25, 10.0)
    engine = Engine(mock_model)
    engine.feed(Received(time_lines("", unix_ms(t), x), "tcp:10.0.0.7:5000/1", 0.0, closed=True))
    assert engine.device_ids() == [] and engine.counters.ended_devices == 1
    first = engine.snapshot(new_interval=True)
    assert "'tcp:10.0.0.7:5000/1'" in first["hint"]
    assert "hint" not in engine.snapshot(new_interval=True)
    check_accounting(first)


def test_a_healthy_stream_gets_no_hint():
    t, x = device_data(23, 20.0)
    _, events, logs = run_server(chunks(csv_lines("d", t, x), np.random.default_rng(7)))
    assert got(events, "d") and "hint" not in logs[-1]


def test_numpy_warnings_become_json_log_lines(capfd):
    lines = [b"w,1000.0,0,0,1\n", b"w,1.7e308,0,0,1\n", b"w,-1.7e308,0,0,1\n",
             b"w,1000.02,0,0,1\n"]
    status, _, logs = run_server([("m", b"".join(lines))])
    assert status == 0
    warnings_ = [e for e in logs if e["event"] == "warning"]
    assert warnings_ and warnings_[0]["category"] == "RuntimeWarning"
    assert "overflow" in warnings_[0]["message"]
    assert "Warning" not in capfd.readouterr().err
    assert logs[-1]["nonfinite"] == 2


def predictions(events):
    return sum(isinstance(e, Prediction) for e in events)


def test_latency_percentiles_cover_the_recent_interval_only():
    engine = Engine(mock_model)
    t, x = device_data(24, 30.0)
    lines = csv_lines("d", t, x)
    third = len(lines) // 3
    # Arrival 1000 s ago: a spike of 1000 s in this batch's predictions.
    spike = engine.feed(Received(lines[:third], "m", time.perf_counter() - 1000.0))
    assert min(e.latency_s for e in spike if isinstance(e, Prediction)) >= 1000.0
    first = engine.snapshot(new_interval=True)
    assert first["latency_p99_ms"] >= 1e6 and first["latency_n"] == predictions(spike)
    calm = engine.feed(Received(lines[third:], "m", time.perf_counter()))
    second = engine.snapshot(new_interval=True)
    assert second["latency_n"] == predictions(calm) and second["latency_p99_ms"] < 1e6
    quiet = engine.snapshot(new_interval=True)
    assert "latency_p99_ms" not in quiet and quiet["latency_n"] == 0
    assert json.dumps(quiet)
