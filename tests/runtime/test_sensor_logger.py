"""Sensor Logger and plain JSON bodies -> daemon sample lines (pure decoding, no I/O)."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from har_runtime.daemon.engine import Engine
from har_runtime.daemon.lines import LineError, LineParser
from har_runtime.daemon.sensor_logger import (BodyError, DecodeOptions, decode_body, is_body,
                                              parse_json)
from har_runtime.daemon.sources import Received
from test_daemon_engine import mock_model

T0 = 1698501144401773000
PARSE6 = LineParser(("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"))
PARSE3 = LineParser(("acc_x", "acc_y", "acc_z"))


def reading(name, ns, x, y, z):
    return {"name": name, "time": ns, "values": {"x": x, "y": y, "z": z}}


def body(entries, device="3b2f-ph"):
    return {"messageId": 1, "sessionId": "s", "deviceId": device, "payload": entries}


def test_total_acceleration_and_gyroscope_become_exact_six_channel_lines():
    rng = np.random.default_rng(0)
    acc, gyro = rng.normal(size=(20, 3)) * 9.8, rng.normal(size=(20, 3))
    ns = T0 + np.arange(20) * 20_000_000
    entries = [reading("totalacceleration", int(t), *a) for t, a in zip(ns, acc.tolist())]
    entries += [reading("gyroscope", int(t), *g) for t, g in zip(ns, gyro.tolist())]
    decoded = decode_body(body(entries))
    samples = [PARSE6.parse(line) for line in decoded.lines]
    assert [s.device for s in samples] == ["3b2f-ph"] * 20
    assert [s.t for s in samples] == [int(t) * 1e-9 for t in ns]
    assert np.array([s.values for s in samples]).tolist() == np.hstack([acc, gyro]).tolist()
    assert (decoded.entries, decoded.companions, decoded.ignored) == (40, 20, 0)


def test_accelerometer_plus_gravity_interpolates_gravity_onto_the_acceleration_times():
    ns = T0 + np.arange(10) * 20_000_000
    user = [reading("accelerometer", int(t), 0.1 * i, 0.0, -0.2) for i, t in enumerate(ns)]
    # Gravity 10 ms later than each acceleration reading, rising linearly along y.
    grav = [reading("gravity", int(t) + 10_000_000, 0.0, 9.0 + 0.01 * i, 1.0)
            for i, t in enumerate(ns)]
    decoded = decode_body(body(user + grav), DecodeOptions(acc="accelerometer+gravity"))
    values = np.array([PARSE3.parse(line).values for line in decoded.lines])
    assert len(values) == 10  # the first sample is 10 ms before the first gravity: in tolerance
    g_t = (ns + 10_000_000) * 1e-9
    g_y = np.interp(ns * 1e-9, g_t, 9.0 + 0.01 * np.arange(10))
    np.testing.assert_allclose(values[:, 1], g_y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values[:, 0], 0.1 * np.arange(10), rtol=0, atol=1e-12)
    np.testing.assert_allclose(values[:, 2], 0.8, rtol=0, atol=1e-12)


def test_samples_far_from_any_gravity_reading_are_unpaired_and_counted():
    user = [reading("accelerometer", T0 + i * 20_000_000, 0, 0, 0) for i in range(10)]
    grav = [reading("gravity", T0 + 9 * 20_000_000, 0, 9.8, 0)]
    decoded = decode_body(body(user + grav), DecodeOptions(acc="accelerometer+gravity",
                                                           pair_tolerance_s=0.05))
    assert len(decoded.lines) == 3 and decoded.unpaired == 7  # the last three are within 50 ms
    d = decoded
    assert d.entries == len(d.lines) + d.unpaired + d.companions + d.ignored + d.bad_entries


def test_acceleration_without_a_gyroscope_reading_gives_a_line_a_gyro_model_rejects():
    decoded = decode_body(body([reading("totalacceleration", T0, 0.0, 9.8, 0.1)]))
    assert decoded.lines == [b"3b2f-ph,1698501144.4017732,0.0,9.8,0.1\n"]
    assert PARSE3.parse(decoded.lines[0]).values == (0.0, 9.8, 0.1)
    with pytest.raises(LineError, match="gyroscope"):
        PARSE6.parse(decoded.lines[0])


def test_unknown_sensors_and_bad_readings_are_counted_not_fatal():
    entries = [reading("totalacceleration", T0, 1, 2, 3),
               {"name": "location", "time": T0, "values": {"latitude": 1}},
               {"name": "battery", "time": T0},
               reading("totalacceleration", "soon", 1, 2, 3),
               reading("totalacceleration", T0, "1", 2, 3),
               reading("totalacceleration", True, 1, 2, 3),
               {"name": "totalacceleration", "time": T0, "values": {"x": 1}},
               {"name": "totalacceleration", "time": T0},
               "not a reading", {"time": T0}, 7]
    d = decode_body(body(entries))
    assert (len(d.lines), d.ignored, d.bad_entries) == (1, 2, 8)
    assert d.entries == len(d.lines) + d.unpaired + d.companions + d.ignored + d.bad_entries
    assert d.last_error and d.summary()["bad_entries"] == 8


def test_nan_values_reach_the_engine_and_are_counted_nonfinite():
    entries = [reading("totalacceleration", T0 + i * 20_000_000, math.nan if i == 3 else 0.1,
                       9.8, 0.0) for i in range(40)]
    decoded = decode_body(parse_json(json.dumps(body(entries)).encode()))  # "NaN" in the JSON
    engine = Engine(mock_model)
    engine.feed(Received(decoded.lines, "http:test", 0.0))
    totals = engine.stream_totals()
    assert (totals.samples_in, totals.nonfinite) == (40, 1)


@pytest.mark.parametrize("text, reason", [
    (b"{not json", "valid JSON"),
    (b"\xff\xfe", "UTF-8"),
    (b"[1, 2]", "JSON object"),
    (b'{"deviceId": "a"}', "'payload'"),
    (b'{"deviceId": "a", "payload": {"name": "x"}}', "list of readings"),
    (b'{"deviceId": "bad id!", "payload": []}', "deviceId"),
    (b'{"deviceId": 5, "payload": []}', "deviceId"),
    (b'{"payload": []}', "deviceId"),
    (b'{"device": "a", "samples": 3}', "'samples' must be a list"),
])
def test_unusable_bodies_raise_with_the_reason(text, reason):
    with pytest.raises(BodyError, match=reason):
        decode_body(parse_json(text))


def test_plain_body_rows_of_four_or_seven_numbers():
    d = decode_body({"device": "pi-1", "samples": [[1.5, 0, 0, 1], [1.52, 0, 0, 1, 0.1, 0.2, 0.3],
                                                   [1, 2], ["1", 0, 0, 0], [math.inf, 0, 0, 0]]})
    assert d.lines == [b"pi-1,1.5,0.0,0.0,1.0\n", b"pi-1,1.52,0.0,0.0,1.0,0.1,0.2,0.3\n",
                       b"pi-1,inf,0.0,0.0,0.0\n"]  # inf is the engine's to count (nonfinite)
    assert (d.bad_entries, d.entries) == (2, 5)


def test_a_body_without_a_device_takes_the_default_and_is_recognised_as_a_body():
    assert is_body({"payload": []}) and is_body({"samples": []}) and not is_body({"t": 1})
    d = decode_body({"payload": [reading("totalacceleration", T0, 0, 0, 1)]},
                    default_device="alice")
    assert d.device == "alice" and d.lines[0].startswith(b"alice,")


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**62), finite, finite, finite), min_size=1,
                max_size=20))
def test_lines_carry_exactly_the_decoded_floats(rows):
    entries = [reading("totalacceleration", ns, x, y, z) for ns, x, y, z in rows]
    decoded = decode_body(body(entries))
    parsed = [PARSE3.parse(line) for line in decoded.lines]
    assert [(s.t,) + s.values for s in parsed] == [(ns * 1e-9, x, y, z) for ns, x, y, z in rows]
    block = PARSE3.parse_block(decoded.lines)
    if block is not None:  # the engine's fast path reads the same values
        assert block.t.tolist() == [s.t for s in parsed]
