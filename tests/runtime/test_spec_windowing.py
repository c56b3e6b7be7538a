"""The spec round-trips and rejects nonsense; the causal gravity filter computes what it says."""
import json

import numpy as np
import pytest

from har_runtime.contract.spec import ALL_CHANNELS, PreprocessSpec, SpecError
from har_runtime.contract.units import convert_samples
from har_runtime.contract.windowing import Windower, make_windows


def test_spec_json_round_trip():
    spec = PreprocessSpec(window=64, hop=32, channels=ALL_CHANNELS, acc_mode="body_gravity")
    again = PreprocessSpec.from_json(spec.to_json())
    assert again == spec
    assert again.input_shape == (64, 9)
    assert again.model_channels[-3:] == ("gravity_x", "gravity_y", "gravity_z")


@pytest.mark.parametrize("change, message", [
    ({"window": 1}, "window"),
    ({"channels": ["acc_q"]}, "unknown channels"),
    ({"acc_mode": "magic"}, "acc_mode"),
    ({"labels": ["a"]}, "same length"),
    ({"label_span": 129}, "label_span"),
    ({"label_span": -1}, "label_span"),
    ({"version": 99}, "not supported"),
    ({"colour": "red"}, "unknown spec fields"),
])
def test_bad_specs_are_refused_with_a_reason(change, message):
    data = PreprocessSpec().to_dict()
    data.update(change)
    with pytest.raises(SpecError, match=message):
        PreprocessSpec.from_json(json.dumps(data))


def test_label_span_labels_the_end_of_the_window_only():
    spec = PreprocessSpec(window=12, hop=4, label_span=4, min_label_fraction=0.75)
    assert (spec.labelled, spec.context) == (4, 8)
    assert (PreprocessSpec(window=12).labelled, PreprocessSpec(window=12).context) == (12, 0)
    assert PreprocessSpec.from_json(spec.to_json()) == spec
    # Samples 0-11 are walking (1), 12-19 sitting (4): a window's label follows its last 4.
    labels = np.array([1] * 12 + [4] * 8)
    batch = make_windows(np.zeros((20, 3)), spec, labels)
    assert batch.end_index.tolist() == [11, 15, 19]
    assert batch.windows.shape == (3, 12, 3)
    assert batch.labels.tolist() == [0, 3, 3]
    # 3 of the last 4 samples labelled: enough for 0.75; the window's first 8 do not count.
    labels[16] = -1
    assert make_windows(np.zeros((20, 3)), spec, labels).labels.tolist() == [0, 3, 3]
    labels[17] = -1
    assert make_windows(np.zeros((20, 3)), spec, labels).labels.tolist() == [0, 3, -1]


def test_spec_from_garbage_json():
    with pytest.raises(SpecError, match="not valid JSON"):
        PreprocessSpec.from_json("{nope")


def test_body_mode_subtracts_causal_moving_average():
    spec = PreprocessSpec(window=8, hop=8, acc_mode="body", gravity_taps=4)
    x = np.arange(40, dtype=float).reshape(-1, 1).repeat(3, axis=1)  # ramp 0..39 on every axis
    batch = make_windows(x, spec)
    # Gravity at sample t is mean(x[t-3..t]) = t - 1.5 once history is real, so body = 1.5.
    assert np.allclose(batch.windows[1:], 1.5)
    # At the start the history repeats sample 0: gravity(0)=0, gravity(1)=0.25, gravity(2)=0.75.
    assert np.allclose(batch.windows[0, :4, 0], [0.0, 0.75, 1.25, 1.5])


def test_windows_end_where_expected_and_reset_restarts():
    spec = PreprocessSpec(window=10, hop=4)
    w = Windower(spec)
    out = w.push(np.zeros((25, 3)))
    assert out.end_index.tolist() == [9, 13, 17, 21]
    assert w.buffered == 3
    w.reset()
    assert len(w.push(np.zeros((9, 3)))) == 0
    assert len(w.push(np.zeros((1, 3)))) == 1


def test_wrong_frame_width_is_refused():
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        make_windows(np.zeros((20, 6)), PreprocessSpec())


def test_unit_conversion_to_g():
    x = np.array([[9.80665, 0.0, -19.6133, 180.0]])
    out = convert_samples(x, ("acc_x", "acc_y", "acc_z", "gyro_x"), "m/s2", "g", "deg/s", "rad/s")
    assert np.allclose(out, [[1.0, 0.0, -2.0, np.pi]])
