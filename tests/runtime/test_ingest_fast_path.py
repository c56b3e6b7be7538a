"""The daemon's array ingest path (`LineParser.parse_block`) against the line-by-line path."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from har_runtime.contract.results import Prediction
from har_runtime.daemon import lines as lines_module
from har_runtime.daemon.engine import Engine, EngineSettings
from har_runtime.daemon.lines import LineParser, _numbers
from har_runtime.daemon.sources import Received
from test_daemon_engine import check_accounting, device_data, mock_model
from test_stream_mock import SPEC

GYRO = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
#: Lines the line path counts as malformed or skipped.
BAD_LINES = [b"", b"# comment", b"device,t,ax,ay,az", b"t,ax,ay,az", b"1.0,2,3",
             b"d1,1.0,x,0,0", b"d\xc3\xa91,1.0,0,0,0", b"d 1,1.0,0,0,0", b"1.0,0,0,0,0,0,0,0,0",
             b"bad#id,1.0,0,0,0", b"timestamp,1.0,0,0,0", b"d1,,0,0,0", b"d1,1.0,0,0,0\xff",
             b"d1,1_0,0,0,0", b"d1,1.0,0,1e3_0,0"]
#: Valid samples that the array path leaves to the line path (whitespace, JSON).
ODD_GOOD_LINES = [b" d1,1.0,0,0,0", b"d1, 1.0,0,0,0\r", b"d1,1.0,0,0,0\t",
                  b'{"t": 1.0, "acc": [0, 0, 0], "device": "a"}']


def interleaved(devices, seconds=12.0, burst=60):
    """CSV lines `device,t,ax,ay,az` of several devices, `burst` samples per device in a row."""
    data = {d: device_data(seed, seconds) for seed, d in enumerate(devices)}
    n = min(len(t) for t, _ in data.values())
    lines = []
    for a in range(0, n, burst):
        for d in devices:
            t, x = data[d]
            lines += [f"{d},{t[i]!r},{x[i, 0]!r},{x[i, 1]!r},{x[i, 2]!r}".encode()
                      for i in range(a, min(a + burst, n))]
    return lines


def comparable(events):
    return [{k: v for k, v in e.to_dict().items() if k != "latency_s"}
            if isinstance(e, Prediction) else e.to_dict() for e in events]


def run(batches, settings, fast: bool, origin="mem"):
    engine = Engine(mock_model, settings)
    used = []
    parse_block = engine._parser.parse_block
    engine._parser.parse_block = (lambda lines: used.append(parse_block(lines)) or used[-1]) \
        if fast else (lambda lines: None)
    events = [e for b in batches for e in engine.feed(Received(b, origin, 0.0))]
    snap = {k: v for k, v in engine.snapshot(per_device=True).items() if "latency" not in k}
    return comparable(events), snap, used


@pytest.mark.parametrize("settings", [
    EngineSettings(),
    EngineSettings(device_buffer=7),
    EngineSettings(max_devices=2, device_buffer=10),
    EngineSettings(max_devices=2, device_policy="refuse", device_buffer=10),
    EngineSettings(emit="changes", device_buffer=40),
])
def test_clean_blocks_take_the_array_path_with_identical_results(settings):
    lines = interleaved(["a", "b.2", "c:3", "d@4"])
    batches = [lines[i:i + 300] for i in range(0, len(lines), 300)]
    fast_events, fast_snap, used = run(batches, settings, fast=True)
    slow_events, slow_snap, _ = run(batches, settings, fast=False)
    assert all(block is not None for block in used) and len(used) == len(batches)
    assert fast_events == slow_events and fast_snap == slow_snap
    assert fast_snap["predictions"] > 0 and fast_snap["malformed"] == 0


def test_lines_without_device_go_to_the_origin():
    t, x = device_data(3)
    lines = [f"{ti!r},{a!r},{b!r},{c!r}".encode() for ti, (a, b, c) in zip(t, x)]
    batches = [lines[i:i + 100] for i in range(0, len(lines), 100)]
    fast = run(batches, EngineSettings(), fast=True, origin="tcp:1.2.3.4:5")
    slow = run(batches, EngineSettings(), fast=False, origin="tcp:1.2.3.4:5")
    assert all(fast[2]) and fast[:2] == slow[:2]
    assert list(fast[1]["per_device"]) == ["tcp:1.2.3.4:5"]


def _one_line_in_the_middle(devices, line):
    """Feed a clean block with `line` inserted mid-way through both paths; check the block is
    refused by the array parser and both paths agree; return (lines, counters snapshot)."""
    lines = interleaved(devices, seconds=3.0)
    lines.insert(len(lines) // 2, line)
    assert LineParser(SPEC.channels).parse_block(lines) is None
    fast_events, fast_snap, _ = run([lines], EngineSettings(), fast=True)
    slow_events, slow_snap, _ = run([lines], EngineSettings(), fast=False)
    assert fast_events == slow_events and fast_snap == slow_snap
    return lines, fast_snap


@pytest.mark.parametrize("bad", BAD_LINES)
def test_one_bad_line_sends_the_block_line_by_line(bad):
    lines, snap = _one_line_in_the_middle(["a", "b"], bad)
    assert snap["lines"] == len(lines)
    assert snap["malformed"] + snap["skipped"] == 1


@pytest.mark.parametrize("odd", ODD_GOOD_LINES)
def test_valid_lines_with_whitespace_or_json_go_line_by_line(odd):
    lines, snap = _one_line_in_the_middle(["a", "d1"], odd)
    assert snap["samples"] == len(lines) and snap["malformed"] == 0


def test_block_values_equal_per_line_parse_including_nan_and_inf():
    parser = LineParser(GYRO)
    lines = [b"d1,1.5,nan,-inf,1e999,0.1,0.2,0.3", b"d2,2.5,1E1,.5,5.,+Infinity,-nan,7",
             b"d1,3.5,1e-3,2,3,4,5,6"]
    block = parser.parse_block(lines)
    assert block is not None and block.devices == ("d1", "d2")
    for i, line in enumerate(lines):
        sample = parser.parse(line)
        assert block.devices[block.device_index[i]] == sample.device
        assert block.t[i] == sample.t
        np.testing.assert_array_equal(block.values[i], np.array(sample.values))


def test_accelerometer_lines_give_nan_gyro_and_are_refused_when_the_model_needs_gyro():
    lines = [b"1.0,0.1,0.2,0.3", b"2.0,0.4,0.5,0.6"]
    block = LineParser(("gyro_x", "acc_z")).parse_block(lines)
    assert block is None  # every line is malformed for a gyro model: the slow path counts it
    block = LineParser(("acc_z", "acc_x")).parse_block(lines)
    assert block.devices is None
    np.testing.assert_array_equal(block.values, [[0.3, 0.1], [0.6, 0.4]])


GOOD = st.builds(lambda d, t, v: f"{d},{t!r},{v[0]!r},{v[1]!r},{v[2]!r}".encode(),
                 st.sampled_from(["a", "b", "c"]),
                 st.floats(0, 30, allow_nan=False),
                 st.tuples(*[st.floats(-4, 4) | st.just(math.inf) | st.just(-1e30)] * 3))


MIXED = st.lists(GOOD | st.sampled_from(BAD_LINES + ODD_GOOD_LINES), max_size=40)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(GOOD, max_size=40) | MIXED, min_size=1, max_size=6),
       buffer=st.integers(1, 12), max_devices=st.integers(1, 3))
def test_random_mixes_of_good_and_bad_lines_match_the_line_path(batches, buffer, max_devices):
    settings_ = EngineSettings(device_buffer=buffer, max_devices=max_devices)
    fast = run(batches, settings_, fast=True)
    slow = run(batches, settings_, fast=False)
    assert fast[:2] == slow[:2]
    check_accounting(fast[1])


FIELD = st.from_regex(r"[+-]?[0-9]{0,9}(\.[0-9]{0,8})?", fullmatch=True) | st.sampled_from(
    ["nan", "-inf", "1e5", "1_0", ".", "-", "+.", ".-5", "5-", "--1", "0x1", "1.2.3", "+-3",
     "-0.0", "-0", "Infinity", "0000000000000001.5", "12345678901234567", "9" * 15 + ".5"])


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(FIELD, min_size=1, max_size=30))
def test_number_fields_parse_exactly_as_float_does(fields):
    try:  # float() also takes underscores; the CSV syntax does not
        want = None if any("_" in f for f in fields) else np.array([float(f) for f in fields])
    except ValueError:
        want = None
    got = _numbers(",".join(fields).encode(), len(fields))
    assert (got is None) if want is None else got.tobytes() == want.tobytes()


def test_fixed_point_blocks_take_the_decimal_fast_path(monkeypatch):
    rng = np.random.default_rng(5)
    lines = [f"d{i % 3},{1700000000 + i / 50:.3f},{a:.4f},{b:.4f},{c:.4f}".encode()
             for i, (a, b, c) in enumerate(rng.normal(size=(600, 3)))]
    lines[7] = b"d1,1700000000.140,-0.0000,+1.5,.25"
    fast_paths = []
    decimals = lines_module._decimals
    monkeypatch.setattr(lines_module, "_decimals",
                        lambda text, count: fast_paths.append(decimals(text, count)) or
                        fast_paths[-1])
    batches = [lines[i:i + 100] for i in range(0, 600, 100)]
    fast_events, fast_snap, used = run(batches, EngineSettings(), fast=True)
    assert all(b is not None for b in used) and all(p is not None for p in fast_paths)
    assert len(fast_paths) == len(batches)
    slow_events, slow_snap, _ = run(batches, EngineSettings(), fast=False)
    assert fast_events == slow_events and fast_snap == slow_snap
    assert fast_snap["predictions"] > 0
    block = LineParser(SPEC.channels).parse_block(lines[:10])
    assert np.signbit(block.values[7, 0]) and block.values[7, 1:].tolist() == [1.5, 0.25]


def test_the_array_path_classifies_a_block_in_one_call():
    lines = interleaved(["a", "b", "c", "d"], seconds=4.0, burst=100)
    engine = Engine(mock_model, EngineSettings())
    events = engine.feed(Received(lines, "mem", 0.0))
    calls = engine.model.classifier.calls
    assert len(calls) == 1 and calls[0] == sum(isinstance(e, Prediction) for e in events) > 4


@pytest.mark.parametrize("settings", [EngineSettings(), EngineSettings(max_devices=2),
                                      EngineSettings(device_buffer=40)])
def test_both_paths_classify_the_same_windows_in_the_same_calls(settings):
    # Identical batches matter: a float model's output can depend on its batch in the last bit.
    lines = interleaved(["a", "b", "c"], seconds=6.0, burst=30)
    batches = [lines[i:i + 250] for i in range(0, len(lines), 250)]
    calls = []
    for fast in (True, False):
        engine = Engine(mock_model, settings)
        if not fast:
            engine._parser.parse_block = lambda lines: None
        for b in batches:
            engine.feed(Received(b, "mem", 0.0))
        calls.append(engine.model.classifier.calls)
    assert calls[0] == calls[1] and max(calls[0]) > 1
