"""`har-export convert --context`: the learned head is converted, gated and shipped hash-checked;
a head that departs from Keras, or does not fit the run, is refused with its own exit code."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from har_export.cli import cli
from har_runtime.bundle import BundleError, load_bundle
from har_runtime.contract.smoothing import CONTEXT_SMOOTHING
from har_runtime.exit_codes import ExitCode
from har_runtime.recurrent_context import RecurrentContext

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def context_dir(tiny_run, tmp_path_factory):
    from scripts.tiny_run import make_tiny_context

    return make_tiny_context(tiny_run, tmp_path_factory.mktemp("ctx") / "context")


def _convert(tiny_run, out, *extra):
    return CliRunner().invoke(cli, ["convert", str(tiny_run / "model.keras"), "--out", str(out),
                                    "--variants", "float32,int8", *extra])


@pytest.fixture(scope="module")
def context_bundle(tiny_run, context_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctxb") / "bundle"
    result = _convert(tiny_run, out, "--context", str(context_dir))
    assert result.exit_code == 0, result.output
    return out


def test_the_head_ships_with_its_hash_and_parity_record(context_bundle):
    bundle = load_bundle(context_bundle)
    assert bundle.schema_version == 3 and isinstance(bundle.context, RecurrentContext)
    assert bundle.context.file in bundle.files
    parity = bundle.context.parity
    assert parity["agreement"] == 1.0 and parity["max_abs_diff"] <= 1e-4
    assert parity["windows"] > 50
    assert bundle.context.state_size == 8 and bundle.context.labels == bundle.labels
    # The head already answers from the past; a second filter on top would only lag it.
    assert bundle.smoothing == CONTEXT_SMOOTHING


def test_the_streamed_context_is_the_keras_head_run_window_by_window(context_bundle,
                                                                      context_dir):
    import keras

    from har_train.context_head import run_step_model
    from har_train.dataset import load_run

    bundle = load_bundle(context_bundle)
    run = load_run(bundle.training["run_dir"])
    windows = run.data.test.x[:60]
    base = bundle.open("float32").predict_proba(windows)
    step = keras.saving.load_model(context_dir / "context.keras", safe_mode=True)
    want = run_step_model(step, base)
    got = bundle.context_runner().run(base)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, base, atol=1e-3)  # the head changes what is emitted


def test_a_changed_head_file_is_refused_on_load(context_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(context_bundle, copy)
    path = copy / "context.tflite"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="context.tflite"):
        load_bundle(copy)


def test_a_head_for_other_labels_is_a_bad_model(tiny_run, context_dir, tmp_path):
    other = tmp_path / "ctx"
    shutil.copytree(context_dir, other)
    summary = json.loads((other / "context.json").read_text())
    summary["labels"] = list(reversed(summary["labels"]))
    (other / "context.json").write_text(json.dumps(summary))
    result = _convert(tiny_run, tmp_path / "out", "--context", str(other))
    assert result.exit_code == int(ExitCode.BAD_MODEL), result.output
    assert "trained for labels" in result.output and not (tmp_path / "out").exists()


def test_a_head_that_departs_from_keras_fails_its_gate(tiny_run, context_dir, tmp_path,
                                                       monkeypatch):
    import har_export.context_export as ce

    real = ce.run_step_model
    monkeypatch.setattr(ce, "run_step_model",
                        lambda model, probs, floor: np.roll(real(model, probs, floor), 1, axis=1))
    result = _convert(tiny_run, tmp_path / "out", "--context", str(context_dir))
    assert result.exit_code == int(ExitCode.PARITY_FAILED), result.output
    assert "context head failed its parity gate" in result.output
    assert not (tmp_path / "out").exists()


def test_posture_and_learned_context_are_exclusive(tiny_run, context_dir, tmp_path):
    result = _convert(tiny_run, tmp_path / "out", "--context", str(context_dir),
                      "--posture-context")
    assert result.exit_code == int(ExitCode.BAD_INPUT), result.output
    assert "choose one" in result.output


def test_inspect_names_the_head_and_its_gate(context_bundle):
    result = CliRunner().invoke(cli, ["inspect", str(context_bundle)])
    assert result.exit_code == 0, result.output
    assert "learned GRU head context.tflite (state 8; parity 100.00% agreement" in result.output
