"""The TFLite classifier wrapper: interpreter choice, batching, int8 quantisation, errors."""
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from har_runtime import interpreter as interp_mod
from har_runtime.interpreter import (INTERPRETER_ENV, InterpreterUnavailableError, ModelLoadError,
                                     TFLiteClassifier, resolve_interpreter)

BUNDLE = Path(__file__).resolve().parents[1] / "data_golden" / "bundle"


@pytest.fixture(scope="module")
def windows():
    with np.load(BUNDLE.parent / "windows.npz") as data:
        return data["x"]


@pytest.fixture(scope="module")
def int8():
    return TFLiteClassifier(BUNDLE / "model_int8.tflite")


@pytest.fixture(scope="module")
def float32():
    return TFLiteClassifier((BUNDLE / "model_float32.tflite").read_bytes())


def test_int8_input_is_quantised_and_output_dequantised_by_the_tensor_params(int8, windows):
    assert int8.input_dtype == np.int8 and int8.output_dtype == np.int8
    in_scale, in_zero = int8.input_quantization
    out_scale, out_zero = int8.output_quantization
    _, factory = resolve_interpreter(int8.interpreter_name)
    raw = factory(model_path=str(BUNDLE / "model_int8.tflite"), num_threads=1)
    idx_in, idx_out = raw.get_input_details()[0]["index"], raw.get_output_details()[0]["index"]
    raw.resize_tensor_input(idx_in, list(windows.shape))
    raw.allocate_tensors()
    q = np.clip(np.rint(windows / np.float32(in_scale)) + in_zero, -128, 127).astype(np.int8)
    raw.set_tensor(idx_in, q)
    raw.invoke()
    expected = (raw.get_tensor(idx_out).astype(np.float32) - out_zero) * np.float32(out_scale)
    np.testing.assert_array_equal(int8.predict_proba(windows), expected)


def test_out_of_range_inputs_saturate_instead_of_wrapping(int8, windows):
    huge = np.full_like(windows[:1], 1e6)
    tiny = np.full_like(windows[:1], -1e6)
    top = np.full_like(windows[:1], (127 - int8.input_quantization[1]) * int8.input_quantization[0])
    bottom = np.full_like(windows[:1], (-128 - int8.input_quantization[1])
                          * int8.input_quantization[0])
    np.testing.assert_array_equal(int8.predict_proba(huge), int8.predict_proba(top))
    np.testing.assert_array_equal(int8.predict_proba(tiny), int8.predict_proba(bottom))


@pytest.mark.parametrize("name", ["int8", "float32"])
def test_any_batch_size_gives_the_same_rows(request, windows, name):
    clf = request.getfixturevalue(name)
    whole = clf.predict_proba(windows)
    singles = np.concatenate([clf.predict_proba(windows[i:i + 1]) for i in range(len(windows))])
    pairs = np.concatenate([clf.predict_proba(windows[i:i + 2]) for i in range(0, len(windows), 2)])
    np.testing.assert_allclose(singles, whole, atol=1e-6, rtol=0)
    np.testing.assert_allclose(pairs, whole, atol=1e-6, rtol=0)
    assert whole.dtype == np.float32 and whole.shape == (len(windows), clf.num_classes)
    assert np.allclose(whole.sum(axis=1), 1.0, atol=0.02)


def test_int8_rows_are_bit_identical_at_any_batch_size(int8, windows):
    whole = TFLiteClassifier(BUNDLE / "model_int8.tflite").predict_proba(windows)
    int8.predict_proba(windows[:1])  # a batch-1 tensor: a few windows then run row by row
    for n in range(2, interp_mod.ROWWISE_MAX + 2):
        assert int8.predict_proba(windows[:n]).tobytes() == whole[:n].tobytes()
        assert int8.predict_proba(windows[:1]).tobytes() == whole[:1].tobytes()


def test_raw_invoke_path_equals_predict_proba(float32, windows):
    assert float32.set_input(windows[:4]) == 4
    float32.invoke_raw()
    np.testing.assert_array_equal(float32.get_output(), float32.predict_proba(windows[:4]))
    assert float32.predict(windows[:4]).tolist() == \
        float32.predict_proba(windows[:4]).argmax(1).tolist()


def test_empty_batch_and_wrong_shapes(float32, windows):
    assert float32.predict_proba(windows[:0]).shape == (0, float32.num_classes)
    with pytest.raises(ValueError, match=r"windows must be \(n, 128, 3\)"):
        float32.predict_proba(windows[:, :64])
    with pytest.raises(ValueError, match="windows must be"):
        float32.predict_proba(windows[0])


def test_details_describe_the_model(float32):
    assert float32.input_shape == (128, 3) and float32.num_classes == 6
    assert float32.input_quantization is None and float32.output_quantization is None
    assert list(float32.input_details["shape_signature"]) == [-1, 128, 3]
    assert float32.output_details["dtype"] == np.float32


def test_bad_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        TFLiteClassifier(tmp_path / "missing.tflite")
    with pytest.raises(ModelLoadError, match="cannot load TFLite model"):
        TFLiteClassifier(b"definitely not a flatbuffer" * 4)
    with pytest.raises(ValueError, match="num_threads"):
        TFLiteClassifier(BUNDLE / "model_int8.tflite", num_threads=0)


def test_unsupported_io_tensors_are_named_by_role():
    # har-export strips tensor names, so errors must not rely on them.
    with pytest.raises(ModelLoadError, match="the input tensor is int16; only float32"):
        interp_mod._quant({"dtype": np.int16, "quantization": (0.1, 0), "name": ""}, "input")
    with pytest.raises(ModelLoadError, match="the output tensor is int8 but has no quantisation"):
        interp_mod._quant({"dtype": np.int8, "quantization": (0.0, 0), "name": ""}, "output")


def test_unknown_interpreter_name_lists_the_choices(monkeypatch):
    monkeypatch.setenv(INTERPRETER_ENV, "onnx")
    with pytest.raises(InterpreterUnavailableError, match="tflite_runtime.*ai_edge_litert"):
        resolve_interpreter()


def _missing():
    raise ImportError("not installed")


def test_no_interpreter_installed_says_what_to_install(monkeypatch):
    monkeypatch.delenv(INTERPRETER_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    for name in interp_mod.INTERPRETERS:
        monkeypatch.setitem(interp_mod._LOADERS, name, _missing)
    with pytest.raises(InterpreterUnavailableError, match="pip install tflite-runtime"):
        resolve_interpreter()


def test_tensorflow_in_process_selects_tensorflows_interpreter(monkeypatch):
    monkeypatch.delenv(INTERPRETER_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    monkeypatch.setitem(interp_mod._LOADERS, "tensorflow", lambda: "tf-factory")
    assert resolve_interpreter() == ("tensorflow", "tf-factory")
    with pytest.raises(InterpreterUnavailableError, match="crash together"):
        resolve_interpreter("tflite_runtime")


def test_environment_variable_picks_the_interpreter(monkeypatch):
    monkeypatch.setenv(INTERPRETER_ENV, "ai_edge_litert")
    monkeypatch.setitem(interp_mod._LOADERS, "ai_edge_litert", lambda: "litert-factory")
    assert resolve_interpreter() == ("ai_edge_litert", "litert-factory")
    monkeypatch.setitem(interp_mod._LOADERS, "ai_edge_litert", _missing)
    with pytest.raises(InterpreterUnavailableError, match="ai_edge_litert"):
        resolve_interpreter()
