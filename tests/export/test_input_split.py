"""Cutting the per-channel standardisation out of the converted graph: when it happens, what
the bundle and the C header then carry, and the int8 calibration range."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from har_export.c_array import c_array_sources  # noqa: E402
from har_export.convert import INPUT_CLIP_STD, int8_calibration, split_input_norm  # noqa: E402
from har_export.pipeline import ExportOptions, export_model  # noqa: E402
from har_runtime.bundle import load_bundle  # noqa: E402
from har_runtime.contract.input_norm import InputNorm  # noqa: E402

pytestmark = pytest.mark.tf


def _windows(n=16, seed=0):
    return np.random.default_rng(seed).normal(0.5, 2.0, size=(n, 128, 3)).astype(np.float32)


def test_the_cut_graph_on_standardised_input_equals_the_model(tiny_run):
    model = keras.models.load_model(tiny_run / "model.keras", safe_mode=True, compile=False)
    core, norm = split_input_norm(model)
    layer = model.get_layer("normalize")
    assert norm == InputNorm.from_variance(np.asarray(layer.mean), np.asarray(layer.variance))
    assert "normalize" not in [lyr.name for lyr in core.layers]
    x = _windows()
    np.testing.assert_allclose(core.predict(norm.apply(x), verbose=0),
                               model.predict(x, verbose=0), rtol=0, atol=1e-6)


def test_models_without_a_leading_normalization_convert_whole():
    from scripts.tiny_run import tiny_model

    plain = tiny_model((128, 3), 6)
    assert split_input_norm(plain) == (plain, None)


def test_no_cut_when_another_layer_also_reads_the_raw_input():
    inputs = keras.Input((128, 3))
    normalized = keras.layers.Normalization(mean=[0.0] * 3, variance=[1.0] * 3)(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(normalized)
    raw_mean = keras.layers.GlobalAveragePooling1D()(inputs)
    both = keras.layers.Concatenate()([pooled, raw_mean])
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(both))
    assert split_input_norm(model) == (model, None)


def test_int8_calibration_is_standardised_and_clipped():
    norm = InputNorm(mean=(0.0, 1.0, -1.0), std=(1.0, 2.0, 0.5))
    x = _windows(4) * 10
    out = int8_calibration(x, norm)
    assert out.dtype == np.float32
    assert out.max() == INPUT_CLIP_STD and out.min() == -INPUT_CLIP_STD
    inside = np.abs(norm.apply(x)) < INPUT_CLIP_STD
    np.testing.assert_array_equal(out[inside], norm.apply(x)[inside])
    np.testing.assert_array_equal(int8_calibration(x, None), x)


def test_the_bundle_and_c_header_carry_the_standardisation(converted, tiny_run):
    _, out = converted
    bundle = load_bundle(out)
    model = keras.models.load_model(tiny_run / "model.keras", safe_mode=True, compile=False)
    assert bundle.input_norm == split_input_norm(model)[1]
    header = (out / "model_int8.h").read_text()
    assert "#define MODEL_INT8_INPUT_CHANNELS 3" in header
    mean_line = next(ln for ln in header.splitlines() if "model_int8_input_mean[3]" in ln)
    values = [float(v.rstrip("f")) for v in mean_line.split("{")[1].split("}")[0].split(",")]
    assert np.array_equal(np.float32(values), np.float32(bundle.input_norm.mean))


def test_header_of_a_model_that_takes_sensor_units(converted):
    _, out = converted
    header = c_array_sources((out / "model_int8.tflite").read_bytes(), "m", True)["m.h"]
    assert "takes sensor units" in header and "input_mean" not in header


def test_export_of_a_model_without_normalization(tmp_path):
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", epochs=20, normalize=False)
    result = export_model(run / "model.keras", tmp_path / "bundle",
                          ExportOptions(variants=("float32", "int8")))
    bundle = load_bundle(result.bundle)
    assert bundle.input_norm is None and result.report.variants["float32"].agreement == 1.0
    assert bundle.variants["float32"].deployable
