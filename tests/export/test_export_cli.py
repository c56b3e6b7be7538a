"""har-export end to end on a tiny synthetic run: convert, the gate (passing and failing),
verify, inspect, and the exit code of every kind of bad input."""
import json
import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

import har_export.pipeline as pipeline  # noqa: E402
from har_export.cli import cli  # noqa: E402
from har_runtime.exit_codes import ExitCode  # noqa: E402
from har_runtime.bundle import load_bundle  # noqa: E402
from har_train.dataset import load_run  # noqa: E402

pytestmark = pytest.mark.tf


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@keras.saving.register_keras_serializable(package="har_export_tests")
class SingularValues(keras.layers.Layer):
    """Singular values of each window: tf.Svd has no TFLite builtin kernel."""

    def call(self, x):
        return keras.ops.svd(x, compute_uv=False)


def _save_run_with(tiny_run, tmp_path, model):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    model.save(run / "model.keras")
    return run


def test_convert_writes_a_passing_bundle_the_runtime_loads(converted, tiny_run):
    result, out = converted
    assert result.exit_code == ExitCode.OK, result.output
    assert "int8" in result.output and "FAIL" not in result.output
    bundle = load_bundle(out)
    assert set(bundle.variants) == {"float32", "float16", "dynamic", "int8"}
    assert bundle.recommended == "int8" and all(v.deployable for v in bundle.variants.values())
    assert set(bundle.files) == {"parity.json", "model_int8.cc", "model_int8.h"}
    calibration = bundle.training["calibration"]
    test_subjects = set(bundle.training["split"]["test"])
    assert calibration["windows"] == 256 and not set(calibration["subjects"]) & test_subjects
    test = load_run(tiny_run).data.test
    keras_pred = keras.models.load_model(tiny_run / "model.keras").predict(test.x, verbose=0)
    agreement = np.mean(bundle.open().predict(test.x) == keras_pred.argmax(1))
    assert agreement == pytest.approx(bundle.variants["int8"].parity["agreement"])


def test_c_array_holds_the_int8_model_bytes(converted):
    _, out = converted
    source = (out / "model_int8.cc").read_text()
    body = source.split("{", 1)[1].split("}", 1)[0]
    data = bytes(int(tok, 16) for tok in body.replace(",", " ").split())
    assert data == (out / "model_int8.tflite").read_bytes()
    assert "alignas(16) const unsigned char g_model[]" in source
    assert f"const unsigned int g_model_len = {len(data)};" in source
    header = (out / "model_int8.h").read_text()
    assert f"#define MODEL_INT8_MODEL_SIZE {len(data)}" in header
    assert "#define MODEL_INT8_TENSOR_ARENA_SIZE" in header


def test_inspect_shows_labels_io_ops_and_parity(converted):
    _, out = converted
    result = run_cli("inspect", out)
    assert result.exit_code == ExitCode.OK, result.output
    for text in ("0=walking", "int8[Nx128x3] scale=", "CONV_2D x2", "recommended int8",
                 "agreement", "window 128 samples (2.56 s)",
                 "input norm  (x - mean) / std per channel: acc_x "):
        assert text in result.output


def test_a_model_with_context_exports_and_says_so(tmp_path):
    from scripts.tiny_run import make_tiny_run

    run = make_tiny_run(tmp_path / "run", epochs=8, window=64, hop=32, context=64)
    out = tmp_path / "bundle"
    result = run_cli("convert", run / "model.keras", "--out", out)
    assert result.exit_code == ExitCode.OK, result.output
    bundle = load_bundle(out)
    assert (bundle.spec.window, bundle.spec.labelled, bundle.spec.context) == (128, 64, 64)
    assert bundle.variants["int8"].input.shape == (-1, 128, 3)
    shown = run_cli("inspect", out).output
    assert "window 128 samples (2.56 s)" in shown
    assert "labels describe the last 64 samples (the first 64 are context)" in shown


def test_verify_reruns_the_gate_and_catches_stricter_limits(converted):
    _, out = converted
    ok = run_cli("verify", out)
    assert ok.exit_code == ExitCode.OK, ok.output
    assert "every deployable variant passes" in ok.output
    strict = run_cli("verify", out, "--threshold", "float16.max_abs_diff=0")
    assert strict.exit_code == ExitCode.PARITY_FAILED, strict.output
    assert "float16" in strict.output and "fail the parity gate" in strict.output


def test_verify_refuses_a_tampered_bundle_or_another_model(converted, tiny_run, tmp_path):
    _, out = converted
    copy = shutil.copytree(out, tmp_path / "bundle")
    with open(copy / "model_float16.tflite", "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    tampered = run_cli("verify", copy)
    assert tampered.exit_code == ExitCode.BAD_MODEL and "model_float16.tflite" in tampered.output
    from scripts.tiny_run import tiny_model

    other = _save_run_with(tiny_run, tmp_path, tiny_model((128, 3), 6, seed=5))
    swapped = run_cli("verify", out, "--run", other)
    assert swapped.exit_code == ExitCode.BAD_MODEL and "not the model" in swapped.output


def test_wrongly_scaled_calibration_fails_the_int8_gate(tiny_run, tmp_path, monkeypatch):
    real = pipeline.calibration_windows

    def scaled(run, size, seed):
        windows, summary = real(run, size, seed)
        return windows * 1000.0, summary

    monkeypatch.setattr(pipeline, "calibration_windows", scaled)
    out = tmp_path / "bundle"
    result = run_cli("convert", tiny_run / "model.keras", "--out", out,
                     "--variants", "float32,int8", "--recommend", "int8")
    assert result.exit_code == ExitCode.PARITY_FAILED, result.output
    assert "int8" in result.output and "FAIL" in result.output
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["variants"]["int8"]["deployable"] is False
    assert doc["variants"]["float32"]["deployable"] is True
    assert doc["recommended"] == "float32"
    assert json.loads((out / "parity.json").read_text())["passed"] is False


def test_unconvertible_op_is_named(tiny_run, tmp_path):
    inputs = keras.Input((128, 3))
    outputs = keras.layers.Dense(6, activation="softmax")(SingularValues(name="svd")(inputs))
    run = _save_run_with(tiny_run, tmp_path, keras.Model(inputs, outputs))
    result = run_cli("convert", run / "model.keras", "--out", tmp_path / "b",
                     "--variants", "float32")
    assert result.exit_code == ExitCode.CONVERSION_FAILED, result.output
    assert "tf.Svd" in result.output and "svd" in result.output
    assert not (tmp_path / "b").exists()


def test_lambda_layers_are_refused_by_safe_mode(tiny_run, tmp_path):
    inputs = keras.Input((128, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(6, activation="softmax")(keras.layers.Flatten()(x))
    run = _save_run_with(tiny_run, tmp_path, keras.Model(inputs, outputs))
    result = run_cli("convert", run / "model.keras", "--out", tmp_path / "b")
    assert result.exit_code == ExitCode.BAD_MODEL and "Lambda" in result.output


def test_missing_and_corrupt_models_are_model_errors(tiny_run, tmp_path):
    missing = run_cli("convert", tmp_path / "none.keras", "--out", tmp_path / "b")
    assert missing.exit_code == ExitCode.BAD_MODEL and "does not exist" in missing.output
    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / "model.keras").write_bytes(b"PK\x03\x04 truncated zip")
    corrupt = run_cli("convert", run / "model.keras", "--out", tmp_path / "b")
    assert corrupt.exit_code == ExitCode.BAD_MODEL
    assert "not a loadable Keras model" in corrupt.output
    (run / "spec.json").unlink()
    shutil.copy(tiny_run / "model.keras", run / "model.keras")
    no_spec = run_cli("convert", run / "model.keras", "--out", tmp_path / "b")
    assert no_spec.exit_code == ExitCode.BAD_MODEL and "spec.json" in no_spec.output


def test_model_that_does_not_fit_the_spec_is_a_model_error(tiny_run, tmp_path):
    from scripts.tiny_run import tiny_model

    run = _save_run_with(tiny_run, tmp_path, tiny_model((64, 3), 6))
    result = run_cli("convert", run / "model.keras", "--out", tmp_path / "b")
    assert result.exit_code == ExitCode.BAD_MODEL and "(64, 3)" in result.output


@pytest.mark.parametrize("args, code, message", [
    (["--variants", "int4"], ExitCode.BAD_INPUT, "unknown variant"),
    (["--threshold", "int8.min_agreement"], ExitCode.BAD_INPUT, "bad threshold"),
    (["--threshold", "int8.speed=1"], ExitCode.BAD_INPUT, "bad threshold"),
    (["--threshold", "int8.min_agreement=1.5"], ExitCode.BAD_INPUT, "fraction in [0, 1]"),
    (["--variants", "float32", "--c-array"], ExitCode.BAD_INPUT, "needs the int8 variant"),
    (["--calibration-size", "0"], ExitCode.USAGE, "calibration-size"),
    (["--recommend", "int4"], ExitCode.USAGE, "int4"),
])
def test_bad_options_are_usage_or_input_errors(tiny_run, tmp_path, args, code, message):
    result = run_cli("convert", tiny_run / "model.keras", "--out", tmp_path / "b", *args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()


def test_existing_output_needs_overwrite(converted, tiny_run, tmp_path):
    out = shutil.copytree(converted[1], tmp_path / "bundle")
    refused = run_cli("convert", tiny_run / "model.keras", "--out", out, "--variants", "float32")
    assert refused.exit_code == ExitCode.BAD_INPUT and "--overwrite" in refused.output
    assert set(load_bundle(out).variants) == {"float32", "float16", "dynamic", "int8"}
    replaced = run_cli("convert", tiny_run / "model.keras", "--out", out, "--variants",
                       "float32", "--overwrite")
    assert replaced.exit_code == ExitCode.OK, replaced.output
    assert set(load_bundle(out).variants) == {"float32"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["bundle"]  # no temp leftovers


def test_overwrite_never_replaces_a_folder_that_is_not_a_bundle(tiny_run, tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    result = run_cli("convert", tiny_run / "model.keras", "--out", precious, "--variants",
                     "float32", "--overwrite")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "only replaces a bundle folder" in result.output
    assert (precious / "keep.txt").read_text() == "mine"


def test_help_version_and_the_exit_codes_of_the_table():
    group = run_cli("-h")
    assert group.exit_code == ExitCode.OK and "Exit codes" in group.output
    for code in (ExitCode.OK, ExitCode.USAGE, ExitCode.BAD_INPUT, ExitCode.BAD_MODEL,
                 ExitCode.CONVERSION_FAILED, ExitCode.PARITY_FAILED):
        assert f"  {int(code)}  {code.meaning}" in group.output
    assert ExitCode.NO_INTERPRETER.meaning not in group.output
    version = run_cli("--version")
    assert version.exit_code == ExitCode.OK and version.output.startswith("har-export, version")
    convert = run_cli("convert", "--help")
    assert "%%" not in convert.output and "6-22 % smaller" in convert.output
    for command in ("verify", "inspect"):
        shown = run_cli(command, "-h").output
        assert "Exit codes" not in shown and ExitCode.CONVERSION_FAILED.meaning not in shown
    assert f"Exits {int(ExitCode.PARITY_FAILED)} when" in run_cli("verify", "-h").output
