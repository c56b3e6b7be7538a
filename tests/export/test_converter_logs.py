"""TensorFlow's native converter logs stay off the terminal unless --verbose; errors always show;
`har-export convert` announces its steps."""
import os
import sys

import pytest
from click.testing import CliRunner

from har_export.tflog import TAIL_LINES, log_tail, native_logs_captured
from har_runtime.exit_codes import ExitCode

#: Lines TensorFlow 2.18's converter writes to fd 2 from C++ on every conversion.
NATIVE_NOISE = ("Ignored output_format", "fully_quantize: 0", "absl::InitializeLog",
                "MLIR V1 optimization pass")


def test_native_writes_to_fd2_are_captured_and_dropped_on_success(capfd):
    with native_logs_captured():
        os.write(2, b"native noise\n")
        print("python noise", file=sys.stderr)
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "native noise" not in err and "python noise" not in err
    assert err == "after\n"


def test_on_failure_the_tail_is_shown_and_the_error_propagates(capfd):
    with pytest.raises(RuntimeError, match="boom"):
        with native_logs_captured():
            for i in range(TAIL_LINES + 5):
                os.write(2, f"line {i}\n".encode())
            raise RuntimeError("boom")
    err = capfd.readouterr().err
    assert f"converter log (last {TAIL_LINES} lines" in err
    assert f"  line {TAIL_LINES + 4}\n" in err and "  line 5\n" in err
    assert "  line 4\n" not in err


def test_verbose_captures_nothing(capfd):
    with native_logs_captured(verbose=True):
        os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"


def test_log_tail_keeps_the_last_non_blank_lines():
    assert log_tail("a\n\n b \nc\n  \n", lines=2) == [" b", "c"]


@pytest.mark.tf
def test_convert_is_quiet_unless_verbose_and_announces_each_step(tiny_run, tmp_path, capfd):
    pytest.importorskip("keras")
    from har_export.cli import cli

    args = ["convert", str(tiny_run / "model.keras"), "--variants", "float32,int8",
            "--calibration-size", "64"]
    quiet = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "quiet")])
    native = capfd.readouterr().err
    assert quiet.exit_code == 0, quiet.output
    for text in NATIVE_NOISE:
        assert text not in native and text not in quiet.output
    steps = quiet.stderr.splitlines()
    assert steps[0].startswith(f"loading {tiny_run / 'model.keras'}")
    assert [s.split(":")[0] for s in steps[1:]] == [
        "converting float32", "converting int8", "parity gate float32", "parity gate int8",
        f"writing bundle to {tmp_path / 'quiet'}"]
    assert "parity gate int8: pass (agreement " in quiet.stderr
    assert "variant" in quiet.stdout and "bundle written to" in quiet.stdout

    loud = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "loud"), "--verbose"])
    assert loud.exit_code == 0, loud.output
    assert "fully_quantize: 0" in capfd.readouterr().err


@pytest.mark.tf
def test_a_failed_conversion_shows_the_error_and_the_converter_log_tail(tiny_run, tmp_path):
    keras = pytest.importorskip("keras")
    import shutil

    from har_export.cli import cli

    @keras.saving.register_keras_serializable(package="har_export_log_tests")
    class Svd(keras.layers.Layer):
        def call(self, x):
            return keras.ops.svd(x, compute_uv=False)

    inputs = keras.Input((128, 3))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    keras.Model(inputs, keras.layers.Dense(6)(Svd(name="svd")(inputs))).save(run / "model.keras")
    result = CliRunner().invoke(cli, ["convert", str(run / "model.keras"), "--out",
                                      str(tmp_path / "b"), "--variants", "float32"])
    assert result.exit_code == ExitCode.CONVERSION_FAILED
    assert "converter log (last " in result.stderr
    assert "'tf.Svd' op is neither a custom op nor a flex op" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("Error: float32: the model uses")
