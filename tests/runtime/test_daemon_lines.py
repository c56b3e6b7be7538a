"""Line splitting (bounded) and parsing of the daemon's CSV and JSON sample lines."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from har_runtime.contract.spec import ACC_CHANNELS, ALL_CHANNELS
from har_runtime.daemon.lines import LineError, LineParser, LineSplitter

ACC = LineParser(ACC_CHANNELS)
SIX = LineParser(ALL_CHANNELS)


def test_splitter_reassembles_lines_across_chunks_and_drops_overlong_ones():
    s = LineSplitter(max_line=10)
    assert s.feed(b"abc\nde") == [b"abc"]
    assert s.feed(b"f\n" + b"x" * 25) == [b"def"]
    assert s.overlong == 1
    assert s.feed(b"yyy\nok\n") == [b"ok"]  # the rest of the long line is skipped, not parsed
    assert s.feed(b"0123456789\n01234567890\n") == [b"0123456789"]
    assert s.overlong == 2
    assert s.feed(b"tail") == [] and s.finish() == [b"tail"]


def test_discard_drops_a_cut_off_line_but_finish_keeps_it():
    s = LineSplitter(max_line=10)
    assert s.feed(b"ok\ncut") == [b"ok"] and s.discard() is True
    assert s.feed(b"next\n") == [b"next"]  # nothing of the cut line is left
    assert s.discard() is False
    s.feed(b"x" * 25)  # an overlong line is counted as overlong, not as cut off
    assert s.discard() is False and s.overlong == 1
    assert s.feed(b"tail") == [] and s.finish() == [b"tail"]


@settings(max_examples=80, deadline=None)
@given(lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20),
       cuts=st.lists(st.integers(0, 800), max_size=10), cap=st.integers(1, 25))
def test_splitter_is_chunking_independent_and_bounded(lines, cuts, cap):
    data = b"".join(line + b"\n" for line in lines)
    s = LineSplitter(cap)
    bounds = sorted({0, len(data), *[c % (len(data) + 1) for c in cuts]})
    got = [x for a, b in zip(bounds, bounds[1:]) for x in s.feed(data[a:b])]
    assert got == [line for line in lines if len(line) <= cap]
    assert s.overlong == sum(len(line) > cap for line in lines)
    assert len(s._buf) <= cap


def test_csv_with_and_without_device_and_gyro():
    assert ACC.parse(b"1.5,0.1,0.2,0.98\n").values == (0.1, 0.2, 0.98)
    s = ACC.parse(b"wrist-1, 1.5, 0.1, 0.2, 0.98")
    assert (s.device, s.t) == ("wrist-1", 1.5)
    s = SIX.parse(b"pi:7,2,1,2,3,4,5,6\r\n")
    assert (s.device, s.t, s.values) == ("pi:7", 2.0, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0))
    assert ACC.parse(b"2,1,2,3,4,5,6").values == (1.0, 2.0, 3.0)  # gyro ignored by acc models


def test_json_lines():
    s = SIX.parse(b'{"t": 3.25, "acc": [1, 2, 3], "gyro": [0.1, 0.2, 0.3], "device": "d1"}')
    assert (s.device, s.t, s.values) == ("d1", 3.25, (1.0, 2.0, 3.0, 0.1, 0.2, 0.3))
    assert ACC.parse(b'{"t": 1, "acc": [1, 2, 3]}').device is None
    assert math.isnan(ACC.parse(b'{"t": 1, "acc": [NaN, 2, 3]}').values[0])


@pytest.mark.parametrize("line", [b"", b"   ", b"# comment", b"t,ax,ay,az", b"device,t,ax,ay,az",
                                  b"timestamp,ax,ay,az"])
def test_blank_comment_and_header_lines_are_skipped(line):
    assert ACC.parse(line) is None


@pytest.mark.parametrize("line, reason", [
    (b"1,2,3", "has 3 fields"),
    (b"1,2,x,4", "not a number"),
    (b"bad id!,1,2,3,4", "device id"),
    (b"\xff\xfe,1", "not UTF-8"),
    (b'{"t": 1, "acc": [1, 2]}', "list of 3 numbers"),
    (b'{"t": "1", "acc": [1, 2, 3]}', "must be a number"),
    (b'{"t": true, "acc": [1, 2, 3]}', "must be a number"),
    (b'{"acc": [1, 2, 3]}', "needs fields"),
    (b'{"t": 1, "acc": [1, 2, 3], "device": 5}', "device id"),
    (b"[1, 2, 3, 4]", "not a number"),
    (b"{nope", "does not parse"),
    (b'{"t": 1' + b"0" * 400 + b', "acc": [1, 2, 3]}', "too large"),
    (b"[" * 100000, "fields"),
])
def test_malformed_lines_raise_one_line_errors(line, reason):
    with pytest.raises(LineError, match=reason) as info:
        ACC.parse(line)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_gyro_model_needs_gyro_values():
    with pytest.raises(LineError, match="gyroscope"):
        SIX.parse(b"1,2,3,4")
    with pytest.raises(LineError, match="gyroscope"):
        SIX.parse(b'{"t": 1, "acc": [1, 2, 3]}')


def test_json_line_with_a_huge_integer_is_a_line_error():
    from har_runtime.daemon.lines import LineError, LineParser
    parser = LineParser(("acc_x", "acc_y", "acc_z"))
    with pytest.raises(LineError):
        parser.parse(b'{"t": ' + b"1" * 4400 + b', "acc": [1, 2, 3]}')
