"""Loading the committed golden bundle without TensorFlow: hashes, schema, stored outputs.

tests/data_golden/ is written by scripts/make_golden_bundle.py; the expected probabilities were
computed at generation time by the same classifier wrapper under TensorFlow's interpreter.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from har_runtime.bundle import READABLE_SCHEMAS, SCHEMA_VERSION, Bundle, BundleError, load_bundle
from har_runtime.contract.smoothing import SmoothingSettings

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden"
FLOAT_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def golden():
    return load_bundle(GOLDEN / "bundle")


@pytest.fixture(scope="module")
def windows():
    with np.load(GOLDEN / "windows.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture
def copy(tmp_path):
    """A writable copy of the golden bundle."""
    return Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "bundle"))


def _edit(bundle_dir: Path, change) -> None:
    path = bundle_dir / "bundle.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_golden_bundle_loads_and_describes_itself(golden):
    assert isinstance(golden, Bundle)
    assert golden.schema_version == SCHEMA_VERSION
    assert set(golden.variants) == {"float32", "float16", "dynamic", "int8"}
    assert golden.labels == golden.spec.labels and len(golden.labels) == 6
    assert golden.recommended == "int8"
    assert isinstance(golden.smoothing, SmoothingSettings)
    int8 = golden.variants["int8"]
    assert int8.input.dtype == "int8" and int8.input.quantization[0] > 0
    assert int8.input.shape[1:] == golden.spec.input_shape
    assert "CONV_2D" in int8.ops and int8.parity["passed"] is True
    assert all(v.deployable for v in golden.variants.values())


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic"])
def test_float_variants_reproduce_stored_probabilities(golden, windows, variant):
    probs = golden.open(variant).predict_proba(windows["x"])
    np.testing.assert_allclose(probs, windows[f"probs_{variant}"], rtol=0, atol=FLOAT_TOLERANCE)


def test_int8_variant_matches_within_one_quantum(golden, windows):
    clf = golden.open()  # the recommended variant: int8
    scale, _ = golden.variants["int8"].output.quantization
    probs = clf.predict_proba(windows["x"])
    assert np.max(np.abs(probs - windows["probs_int8"])) <= scale + 1e-7
    assert np.array_equal(probs.argmax(1), windows["probs_int8"].argmax(1))


def test_tampered_model_byte_is_refused_naming_the_file(copy):
    path = copy / "model_int8.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model_int8\.tflite: sha256 mismatch"):
        load_bundle(copy)


def test_tampered_parity_report_is_refused(copy):
    with open(copy / "parity.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match=r"parity\.json: sha256 mismatch"):
        load_bundle(copy)


def test_open_rechecks_the_hash_even_without_verification(copy):
    bundle = load_bundle(copy, verify=False)
    path = copy / "model_float32.tflite"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model_float32.tflite: sha256"):
        bundle.open("float32")


def test_unknown_schema_version_is_refused(copy):
    unknown = max(READABLE_SCHEMAS) + 1
    _edit(copy, lambda d: d.update(schema_version=unknown))
    with pytest.raises(BundleError, match=f"schema version {unknown} is not supported"):
        load_bundle(copy)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"schema_version": 1, "labels": []}', r"lacks field\(s\)"),
])
def test_malformed_bundle_json_is_refused(copy, text, message):
    (copy / "bundle.json").write_text(text)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)


def test_missing_model_file_is_refused(copy):
    (copy / "model_dynamic.tflite").unlink()
    with pytest.raises(BundleError, match="model_dynamic.tflite is missing"):
        load_bundle(copy)


def test_file_names_cannot_leave_the_bundle(copy):
    _edit(copy, lambda d: d["variants"]["float32"].update(file="../model_float32.tflite"))
    with pytest.raises(BundleError, match="not a plain file name"):
        load_bundle(copy)


def test_labels_must_match_the_spec(copy):
    _edit(copy, lambda d: d.update(labels=list(reversed(d["labels"]))))
    with pytest.raises(BundleError, match="labels must equal"):
        load_bundle(copy)


def test_undeployable_variant_is_refused_unless_allowed(copy):
    def fail_int8(doc):
        doc["variants"]["int8"]["deployable"] = False
        doc["recommended"] = "dynamic"

    _edit(copy, fail_int8)
    bundle = load_bundle(copy)
    assert bundle.open().input_dtype == np.float32  # the recommended dynamic variant
    with pytest.raises(BundleError, match="failed the parity gate"):
        bundle.open("int8")
    assert bundle.open("int8", allow_undeployable=True).input_dtype == np.int8


def test_recommending_an_undeployable_variant_is_refused(copy):
    _edit(copy, lambda d: d["variants"]["int8"].update(deployable=False))
    with pytest.raises(BundleError, match="recommended variant 'int8' is not a deployable"):
        load_bundle(copy)


def test_bundle_without_a_deployable_variant_needs_an_explicit_choice(copy):
    def nothing_passed(doc):
        for entry in doc["variants"].values():
            entry["deployable"] = False
        doc["recommended"] = None

    _edit(copy, nothing_passed)
    bundle = load_bundle(copy)
    with pytest.raises(BundleError, match="no variant passed the parity gate"):
        bundle.open()
    with pytest.raises(BundleError, match="no variant 'int4'"):
        bundle.open("int4", allow_undeployable=True)


def test_integer_tensor_without_quantisation_is_refused(copy):
    _edit(copy, lambda d: d["variants"]["int8"]["input"].update(quantization=None))
    with pytest.raises(BundleError, match="integer tensor without quantization"):
        load_bundle(copy)


def test_size_mismatch_is_refused_even_without_hashing(copy):
    _edit(copy, lambda d: d["variants"]["float16"].update(size_bytes=1))
    with pytest.raises(BundleError, match="model_float16.tflite: size is"):
        load_bundle(copy, verify=False)


def test_missing_bundle_folder_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="bundle.json is missing"):
        load_bundle(tmp_path / "nowhere")


def test_declared_quantisation_must_match_the_model(copy):
    def wrong_scale(doc):
        doc["variants"]["int8"]["input"]["quantization"]["scale"] *= 2

    _edit(copy, wrong_scale)
    with pytest.raises(BundleError, match="model_int8.tflite: tensor dtype, shape or quantisation"):
        load_bundle(copy).open("int8")


@pytest.mark.parametrize("recommended", [[], {"a": 1}, 3])
def test_malformed_recommended_is_a_bundle_error(tmp_path, recommended):
    import json
    import shutil
    from har_runtime.bundle import BundleError, load_bundle
    from test_stream_mock import golden_bundle
    copy = tmp_path / "b"
    shutil.copytree(golden_bundle(), copy)
    doc = json.loads((copy / "bundle.json").read_text())
    doc["recommended"] = recommended
    (copy / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="recommended"):
        load_bundle(copy)
