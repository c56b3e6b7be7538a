"""Tensor names are stripped from exported .tflite files (smaller, same outputs) unless
`--keep-tensor-names` asks for them."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from har_export.cli import cli  # noqa: E402
from har_export.convert import convert_variants, strip_names  # noqa: E402
from har_runtime.interpreter import TFLiteClassifier  # noqa: E402
from har_train.dataset import make_spec  # noqa: E402
from har_train.models import build_model  # noqa: E402

pytestmark = pytest.mark.tf


def _tensor_names(content: bytes):
    interp = tf.lite.Interpreter(model_content=content)
    return [d["name"] for d in interp.get_tensor_details()]


@pytest.fixture(scope="module")
def kept_variants():
    """float32 and int8 files of a small tiny_dscnn, converted with their names."""
    keras.utils.set_random_seed(0)
    model = build_model("tiny_dscnn", make_spec(), np.zeros(3), np.ones(3))
    calibration = np.random.default_rng(0).normal(size=(32, 128, 3)).astype(np.float32)
    return convert_variants(model, ["float32", "int8"], calibration, keep_names=True)


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_stripping_keeps_outputs_bit_identical_and_shrinks_the_file(kept_variants, variant):
    kept = kept_variants[variant]
    stripped = strip_names(kept)
    assert any(_tensor_names(kept)) and not any(_tensor_names(stripped))
    assert len(stripped) < 0.95 * len(kept)
    x = np.random.default_rng(1).normal(size=(20, 128, 3)).astype(np.float32) * 2
    np.testing.assert_array_equal(TFLiteClassifier(stripped).predict_proba(x),
                                  TFLiteClassifier(kept).predict_proba(x))


def _names_in_bundle(bundle):
    doc = json.loads((bundle / "bundle.json").read_text())
    return doc["training"]["tensor_names"], _tensor_names((bundle / "model_int8.tflite")
                                                          .read_bytes())


def test_export_strips_names_by_default_and_keeps_them_on_request(converted, tiny_run,
                                                                   tmp_path):
    result, bundle = converted
    assert result.exit_code == 0, result.output
    recorded, names = _names_in_bundle(bundle)
    assert recorded == "stripped" and not any(names)
    out = tmp_path / "named"
    kept = CliRunner().invoke(cli, ["convert", str(tiny_run / "model.keras"), "--out", str(out),
                                    "--variants", "float32,int8", "--calibration-size", "256",
                                    "--keep-tensor-names"])
    assert kept.exit_code == 0, kept.output
    recorded, names = _names_in_bundle(out)
    assert recorded == "kept" and any(names)
    named_size = (out / "model_int8.tflite").stat().st_size
    assert named_size > (bundle / "model_int8.tflite").stat().st_size
