"""Export building blocks that need no converter: calibration sampling, the gate's arithmetic,
threshold overrides, recommendation and converter-error messages."""
from pathlib import Path

import numpy as np
import pytest

from har_export.bundle_writer import recommend
from har_export.convert import describe_conversion_error, parse_variants, representative_indices
from har_export.errors import InputError, OptionError
from har_export.parity import ParityThresholds, VariantGate, format_table, macro_f1, run_gate
from har_export.pipeline import calibration_windows
from har_runtime.bundle import load_bundle
from har_runtime.interpreter import TFLiteClassifier
from har_train.dataset import RunData, SplitData, WindowSet, make_spec
from har_train.splits import SubjectSplit

GOLDEN = Path(__file__).resolve().parents[1] / "data_golden"


def test_calibration_sample_is_class_balanced_and_seeded():
    y = np.array([0] * 100 + [1] * 10 + [2] * 40)
    idx = representative_indices(y, 30, seed=1)
    assert np.bincount(y[idx]).tolist() == [10, 10, 10]
    assert np.array_equal(idx, representative_indices(y, 30, seed=1))
    assert not np.array_equal(idx, representative_indices(y, 30, seed=2))
    # A rare class runs out; the others fill the remaining slots.
    assert np.bincount(y[representative_indices(y, 60, seed=1)]).tolist() == [25, 10, 25]
    assert len(representative_indices(y, 1000, seed=0)) == len(y)
    with pytest.raises(OptionError):
        representative_indices(y, 0, seed=0)


def _run_data(train_subjects, test_subjects):
    spec = make_spec("har6", window=8, hop=4)
    rng = np.random.default_rng(0)

    def windows(subjects):
        n = 6 * len(subjects)
        return WindowSet(rng.normal(size=(n, 8, 3)).astype(np.float32), np.arange(n) % 6,
                         np.repeat(subjects, 6))

    split = SubjectSplit(tuple(train_subjects), (), tuple(test_subjects))
    data = SplitData(windows(train_subjects), windows([]), windows(test_subjects), split)
    return RunData(spec, {"seed": 0}, data)


def test_calibration_windows_come_from_training_subjects_only():
    x, summary = calibration_windows(_run_data([1, 3], [2]), 12, seed=0)
    assert x.shape == (12, 8, 3) and summary["subjects"] == [1, 3]
    assert summary["per_class"] == [2] * 6 and summary["source"] == "train"
    with pytest.raises(InputError, match=r"test subjects \[2\]"):
        calibration_windows(_run_data([1, 2], [2]), 12, seed=0)


def test_macro_f1_matches_a_hand_computation():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1 -> 0.8; class 2: tp 0 -> 0.
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(y_true, y_true) == 1.0


def test_threshold_overrides_and_round_trip():
    base = ParityThresholds()
    assert base.int8 == VariantGate(0.99, None, 0.01)
    assert base.float32.max_abs_diff == 1e-4 and base.float16.min_agreement == 0.995
    changed = base.with_overrides(["int8.min_agreement=0.95", "float32.max_abs_diff=none"])
    assert changed.int8.min_agreement == 0.95 and changed.float32.max_abs_diff is None
    assert base.int8.min_agreement == 0.99  # frozen: the defaults are untouched
    assert ParityThresholds.from_dict(changed.to_dict()) == changed
    for bad in ("int9.min_agreement=1", "int8=1", "int8.min_agreement=abc",
                "int8.max_abs_diff=nan", "int8.max_accuracy_drop=2"):
        with pytest.raises(OptionError):
            base.with_overrides([bad])


def test_recommendation_prefers_int8_and_falls_back():
    assert recommend({"float32": True, "dynamic": True, "int8": True}) == "int8"
    assert recommend({"float32": True, "dynamic": True, "int8": False}) == "dynamic"
    assert recommend({"float32": True, "float16": True}, "float32") == "float32"
    assert recommend({"float32": True, "float16": False}, "float16") == "float32"
    assert recommend({"float32": False}) is None


def test_parse_variants_keeps_canonical_order():
    assert parse_variants(["int8,float32", "float16"]) == ("float32", "float16", "int8")
    with pytest.raises(OptionError, match="unknown variant"):
        parse_variants(["float64"])


class _FakeConverterError(Exception):
    pass


def test_conversion_error_names_the_op_and_layer():
    exc = _FakeConverterError(
        'loc(callsite(fused["Svd:", "functional_1/svd_1/Svd@__inference_call_9"] at x)): '
        "'tf.Svd' op is neither a custom op nor a flex op\nCustom ops: Svd, Qr")
    message = describe_conversion_error(exc, "int8", ["windows", "svd", "probs"])
    assert message.startswith("int8: the model uses op(s) tf.Qr, tf.Svd in layer(s) svd")
    plain = describe_conversion_error(_FakeConverterError("\n  calibration blew up\n"), "int8", [])
    assert plain == "int8: TFLite conversion failed: calibration blew up"


def _golden_windows():
    with np.load(GOLDEN / "windows.npz") as data:
        return data["x"], data["probs_float32"]


def _golden_norm():
    """The golden bundle's input standardisation (its models take standardised channels)."""
    return load_bundle(GOLDEN / "bundle").input_norm


def test_gate_scores_against_the_reference_probabilities():
    x, probs = _golden_windows()
    y = probs.argmax(1)
    model = (GOLDEN / "bundle" / "model_float32.tflite").read_bytes()
    norm = _golden_norm()
    same = run_gate({"float32": model}, x, y, np.zeros(len(y)), probs, ParityThresholds(), norm)
    assert same.passed and same.variants["float32"].agreement == 1.0
    assert same.variants["float32"].max_abs_diff < 1e-5
    shifted = np.roll(probs, 1, axis=1)  # a reference that disagrees everywhere
    other = run_gate({"float32": model}, x, y, np.zeros(len(y)), shifted, ParityThresholds(),
                     norm)
    assert not other.passed and other.failed() == ("float32",)
    assert other.variants["float32"].accuracy_drop < 0  # the reference is worse than TFLite
    assert "FAIL: agreement 0 (needs >= 1)" in format_table(other)
    with pytest.raises(OptionError, match="no test windows"):
        run_gate({"float32": model}, x[:0], y[:0], [], probs[:0], ParityThresholds())


def test_accuracy_drop_is_reference_accuracy_minus_variant_accuracy():
    x, probs = _golden_windows()
    model, norm = (GOLDEN / "bundle" / "model_int8.tflite").read_bytes(), _golden_norm()
    y = TFLiteClassifier(model, input_norm=norm).predict(x)
    reference = np.eye(probs.shape[1], dtype=np.float32)[y]
    wrong = (y[0] + 1) % probs.shape[1]
    reference[0] = 0.0
    reference[0, wrong] = 1.0
    y[0] = wrong  # the reference is right on every window, int8 on all but the first
    gate = ParityThresholds(int8=VariantGate(min_agreement=0.0, max_accuracy_drop=0.05))
    report = run_gate({"int8": model}, x, y, [1], reference, gate, norm)
    assert report.variants["int8"].accuracy_drop == pytest.approx(1 / len(x))
    assert report.failed() == ("int8",)
    loose = ParityThresholds(int8=VariantGate(min_agreement=0.0, max_accuracy_drop=0.1))
    assert run_gate({"int8": model}, x, y, [1], reference, loose, norm).passed
