"""Per-channel input standardisation: the constants, the classifier applying them, the bundle
field that carries them (schema 2) and the version-1 bundles that predate it."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from har_runtime.bundle import BundleError, load_bundle
from har_runtime.contract.input_norm import InputNorm, InputNormError
from har_runtime.interpreter import ModelLoadError, TFLiteClassifier

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden"
BUNDLE = GOLDEN / "bundle"


@pytest.fixture(scope="module")
def norm():
    return load_bundle(BUNDLE).input_norm


@pytest.fixture(scope="module")
def windows():
    with np.load(GOLDEN / "windows.npz") as data:
        return data["x"]


def test_apply_standardises_each_channel_in_float32():
    norm = InputNorm(mean=(1.0, -2.0), std=(2.0, 0.5))
    x = np.array([[[3.0, -2.0], [1.0, -1.0]]], np.float32)
    out = norm.apply(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[1.0, 0.0], [0.0, 2.0]]])


def test_from_variance_uses_the_keras_normalization_arithmetic():
    norm = InputNorm.from_variance([0.5, 1.0], [4.0, 0.0])
    assert norm.mean == (0.5, 1.0)
    # std = max(sqrt(var), 1e-7) in float32, as keras.layers.Normalization divides by.
    assert norm.std == (2.0, float(np.float32(1e-7)))


@pytest.mark.parametrize("data, message", [
    ({"mean": [0.0]}, "exactly 'mean' and 'std'"),
    ({"mean": [0.0], "std": [1.0], "extra": 1}, "exactly 'mean' and 'std'"),
    ({"mean": "0", "std": [1.0]}, "lists of numbers"),
    ({"mean": [0.0, 1.0], "std": [1.0]}, "one mean and one std per channel"),
    ({"mean": [], "std": []}, "one mean and one std per channel"),
    ({"mean": [0.0], "std": [0.0]}, "std must be > 0"),
    ({"mean": [0.0], "std": [-1.0]}, "std must be > 0"),
    ({"mean": [math.nan], "std": [1.0]}, "finite numbers"),
    ({"mean": ["0"], "std": [1.0]}, "finite numbers"),
    ({"mean": [True], "std": [1.0]}, "finite numbers"),
    ([0.0, 1.0], "exactly 'mean' and 'std'"),
])
def test_malformed_constants_are_refused(data, message):
    with pytest.raises(InputNormError, match=message):
        InputNorm.from_dict(data)


def test_round_trip_through_json():
    norm = InputNorm(mean=(0.1, 0.2, 0.3), std=(1.5, 2.5, 3.5))
    assert InputNorm.from_dict(json.loads(json.dumps(norm.to_dict()))) == norm


def test_float_classifier_standardises_before_the_model(norm, windows):
    model = (BUNDLE / "model_float32.tflite").read_bytes()
    with_norm = TFLiteClassifier(model, input_norm=norm).predict_proba(windows)
    by_hand = TFLiteClassifier(model).predict_proba(norm.apply(windows))
    np.testing.assert_array_equal(with_norm, by_hand)


def test_int8_classifier_folds_the_standardisation_into_quantisation(norm, windows):
    model = (BUNDLE / "model_int8.tflite").read_bytes()
    clf = TFLiteClassifier(model, input_norm=norm)
    scale, zero = clf.input_quantization
    clf.set_input(windows)
    folded = clf._quantised.astype(np.int32)
    explicit = np.clip(np.rint(norm.apply(windows) / np.float32(scale)) + zero, -128, 127)
    # The fold is x * (1 / (std * scale)) + (zero - mean / (std * scale)): the same real number,
    # rounded differently in float32, so a value on a rounding boundary may move one level.
    assert np.abs(folded - explicit).max() <= 1
    assert np.mean(folded == explicit) > 0.999


def test_a_norm_for_the_wrong_number_of_channels_is_refused():
    wrong = InputNorm(mean=(0.0, 0.0), std=(1.0, 1.0))
    with pytest.raises(ModelLoadError, match="input_norm has 2 channels but the model takes 3"):
        TFLiteClassifier(BUNDLE / "model_int8.tflite", input_norm=wrong)


@pytest.fixture
def copy(tmp_path):
    return Path(shutil.copytree(BUNDLE, tmp_path / "bundle"))


def _edit(bundle_dir: Path, change) -> None:
    path = bundle_dir / "bundle.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_bundle_open_applies_its_norm(norm, windows):
    bundle = load_bundle(BUNDLE)
    assert bundle.input_norm == norm and norm.channels == 3
    clf = bundle.open("float32")
    assert clf.input_norm == norm
    expected = TFLiteClassifier(BUNDLE / "model_float32.tflite").predict_proba(norm.apply(windows))
    np.testing.assert_array_equal(clf.predict_proba(windows), expected)


def test_version_1_bundles_load_and_take_sensor_units(copy):
    def to_v1(doc):
        doc["schema_version"] = 1
        del doc["input_norm"]

    _edit(copy, to_v1)
    bundle = load_bundle(copy)
    assert bundle.schema_version == 1 and bundle.input_norm is None
    assert bundle.open("int8").input_norm is None


def test_version_2_bundles_must_say_whether_they_standardise(copy):
    _edit(copy, lambda doc: doc.pop("input_norm"))
    with pytest.raises(BundleError, match=r"lacks field\(s\) \['input_norm'\]"):
        load_bundle(copy)


def test_null_input_norm_means_sensor_units(copy):
    _edit(copy, lambda doc: doc.update(input_norm=None))
    assert load_bundle(copy).input_norm is None


@pytest.mark.parametrize("value, message", [
    ({"mean": [0.0, 0.0], "std": [1.0, 1.0]}, "input_norm has 2 channels but the spec has 3"),
    ({"mean": [0.0, 0.0, 0.0], "std": [1.0, 0.0, 1.0]}, "std must be > 0"),
    ("standardise", "exactly 'mean' and 'std'"),
])
def test_bad_input_norm_in_a_bundle_is_a_bundle_error(copy, value, message):
    _edit(copy, lambda doc: doc.update(input_norm=value))
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)
