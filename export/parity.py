"""The accuracy-parity gate: does each TFLite variant still behave like the Keras model?

Every variant is scored by `har_runtime.interpreter.TFLiteClassifier`, the wrapper the device
uses (quantisation of int8 input and output included), on the held-out test-subject windows,
and compared with the Keras model's own predictions on the same windows. A variant that fails
any check of its gate is still written to the bundle but marked not deployable.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from har_export.errors import OptionError
from har_runtime.contract.input_norm import InputNorm
from har_runtime.interpreter import TFLiteClassifier

#: Windows per interpreter call while scoring (bounds memory on big test sets).
SCORE_BATCH = 1024


@dataclass(frozen=True)
class VariantGate:
    """Limits for one variant. Fractions throughout: 0.995 agreement is 99.5 %,
    a max_accuracy_drop of 0.01 is one percentage point. None disables a check."""

    min_agreement: float
    max_abs_diff: Optional[float] = None
    max_accuracy_drop: Optional[float] = None

    def __post_init__(self) -> None:
        if self.min_agreement is None:
            raise OptionError("min_agreement cannot be turned off (use 0 to accept any agreement)")
        for name in ("min_agreement", "max_accuracy_drop"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise OptionError(f"{name} must be a fraction in [0, 1], got {value}")
        if self.max_abs_diff is not None and not self.max_abs_diff >= 0.0:
            raise OptionError(f"max_abs_diff must be >= 0, got {self.max_abs_diff}")


@dataclass(frozen=True)
class ParityThresholds:
    """The gate per variant (defaults documented in docs/EXPORT.md)."""

    float32: VariantGate = VariantGate(min_agreement=1.0, max_abs_diff=1e-4)
    float16: VariantGate = VariantGate(min_agreement=0.995)
    dynamic: VariantGate = VariantGate(min_agreement=0.995)
    int8: VariantGate = VariantGate(min_agreement=0.99, max_accuracy_drop=0.01)

    def gate(self, variant: str) -> VariantGate:
        return getattr(self, variant)

    def to_dict(self) -> Dict[str, Dict[str, Optional[float]]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ParityThresholds":
        """Thresholds as recorded in a bundle (unknown variants or fields are an error)."""
        try:
            return cls(**{name: VariantGate(**gate) for name, gate in dict(data).items()})
        except TypeError as exc:
            raise OptionError(f"unreadable gate thresholds: {exc}") from None

    def with_overrides(self, items: Iterable[str]) -> "ParityThresholds":
        """Apply "variant.field=value" overrides (value "none" disables that check)."""
        result = self
        for item in items:
            key, sep, text = item.partition("=")
            variant, dot, name = key.strip().partition(".")
            gate_fields = {f.name for f in dataclasses.fields(VariantGate)}
            if not sep or not dot or variant not in {f.name for f in dataclasses.fields(self)} \
                    or name not in gate_fields:
                raise OptionError(f"bad threshold {item!r}; use VARIANT.FIELD=VALUE with VARIANT "
                                  f"in {[f.name for f in dataclasses.fields(self)]} and FIELD in "
                                  f"{sorted(gate_fields)}")
            value = _parse_limit(text.strip(), item)
            gate = dataclasses.replace(result.gate(variant), **{name: value})
            result = dataclasses.replace(result, **{variant: gate})
        return result


def _parse_limit(text: str, item: str) -> Optional[float]:
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"bad threshold {item!r}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise OptionError(f"bad threshold {item!r}: the value must be finite")
    return value


@dataclass(frozen=True)
class Check:
    """One comparison of a measured value against its limit."""

    name: str
    value: float
    limit: float
    passed: bool

    def describe(self) -> str:
        op = ">=" if self.name == "agreement" else "<="
        return f"{self.name} {self.value:.6g} (needs {op} {self.limit:.6g})"


@dataclass(frozen=True)
class VariantParity:
    """How one variant compares with the Keras model on the test windows."""

    variant: str
    size_bytes: int
    interpreter: str
    accuracy: float
    macro_f1: float
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    accuracy_drop: float
    checks: Tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out["passed"] = self.passed
        return out


@dataclass(frozen=True)
class ParityReport:
    """The gate's verdict for every variant, plus what it was measured on."""

    n_windows: int
    test_subjects: Tuple[int, ...]
    keras_accuracy: float
    keras_macro_f1: float
    thresholds: ParityThresholds
    variants: Mapping[str, VariantParity] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.variants.values())

    def failed(self) -> Tuple[str, ...]:
        return tuple(name for name, v in self.variants.items() if not v.passed)

    def to_dict(self) -> Dict[str, Any]:
        return {"n_windows": self.n_windows, "test_subjects": list(self.test_subjects),
                "keras": {"accuracy": self.keras_accuracy, "macro_f1": self.keras_macro_f1},
                "thresholds": self.thresholds.to_dict(), "passed": self.passed,
                "variants": {k: v.to_dict() for k, v in self.variants.items()}}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over the classes present in either labels or predictions."""
    classes = np.union1d(y_true, y_pred)
    if classes.size == 0:
        return 0.0
    scores = []
    for c in classes:
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        denom = float(np.sum(y_pred == c) + np.sum(y_true == c))
        scores.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def _checks(gate: VariantGate, agreement: float, max_abs: float,
            drop: float) -> Tuple[Check, ...]:
    checks = [Check("agreement", agreement, gate.min_agreement, agreement >= gate.min_agreement)]
    if gate.max_abs_diff is not None:
        checks.append(Check("max_abs_diff", max_abs, gate.max_abs_diff,
                            max_abs <= gate.max_abs_diff))
    if gate.max_accuracy_drop is not None:
        # A tiny epsilon keeps "exactly one point" from failing on float rounding.
        checks.append(Check("accuracy_drop", drop, gate.max_accuracy_drop,
                            drop <= gate.max_accuracy_drop + 1e-12))
    return tuple(checks)


def score_variant(name: str, model: bytes, windows: np.ndarray, y: np.ndarray,
                  keras_probs: np.ndarray, gate: VariantGate,
                  input_norm: Optional[InputNorm] = None) -> VariantParity:
    """Score one variant through the runtime's classifier against the Keras probabilities.
    `windows` are in sensor units; `input_norm` is the bundle's standardisation, if any."""
    clf = TFLiteClassifier(model, input_norm=input_norm)
    probs = np.concatenate([clf.predict_proba(windows[i:i + SCORE_BATCH])
                            for i in range(0, len(windows), SCORE_BATCH)])
    pred, reference = probs.argmax(axis=1), keras_probs.argmax(axis=1)
    diff = np.abs(probs.astype(np.float64) - keras_probs.astype(np.float64))
    accuracy = float(np.mean(pred == y))
    drop = float(np.mean(reference == y)) - accuracy
    agreement = float(np.mean(pred == reference))
    return VariantParity(variant=name, size_bytes=len(model), interpreter=clf.interpreter_name,
                         accuracy=accuracy, macro_f1=macro_f1(y, pred), agreement=agreement,
                         max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
                         accuracy_drop=drop,
                         checks=_checks(gate, agreement, float(diff.max()), drop))


def run_gate(models: Mapping[str, bytes], windows: np.ndarray, y: np.ndarray,
             subjects: Sequence[int], keras_probs: np.ndarray,
             thresholds: ParityThresholds,
             input_norm: Optional[InputNorm] = None,
             on_variant: Optional[Callable[[VariantParity], None]] = None) -> ParityReport:
    """Score every variant in `models` on the test windows; the report holds each verdict.
    `on_variant` sees each verdict as soon as it is known (progress output)."""
    if len(windows) == 0:
        raise OptionError("the run has no test windows; the parity gate needs held-out "
                          "test-subject windows")
    reference = keras_probs.argmax(axis=1)
    variants = {}
    for name, content in models.items():
        variants[name] = score_variant(name, content, windows, y, keras_probs,
                                       thresholds.gate(name), input_norm)
        if on_variant:
            on_variant(variants[name])
    return ParityReport(n_windows=int(len(windows)),
                        test_subjects=tuple(sorted({int(s) for s in subjects})),
                        keras_accuracy=float(np.mean(reference == y)),
                        keras_macro_f1=macro_f1(y, reference), thresholds=thresholds,
                        variants=variants)


def format_table(report: ParityReport) -> str:
    """The human-readable verdict: one row per variant, failing checks spelled out."""
    lines = [f"parity gate on {report.n_windows} test windows (subjects "
             f"{', '.join(map(str, report.test_subjects))}); Keras accuracy "
             f"{100 * report.keras_accuracy:.2f} %, macro-F1 {report.keras_macro_f1:.4f}",
             f"{'variant':<9}{'size':>10}{'acc %':>8}{'F1':>8}{'agree %':>9}{'max|dp|':>10}"
             f"{'mean|dp|':>10}  gate"]
    for v in report.variants.values():
        verdict = "pass" if v.passed else "FAIL: " + "; ".join(
            c.describe() for c in v.checks if not c.passed)
        lines.append(f"{v.variant:<9}{v.size_bytes / 1024:>8.1f}KB{100 * v.accuracy:>8.2f}"
                     f"{v.macro_f1:>8.4f}{100 * v.agreement:>9.2f}{v.max_abs_diff:>10.2e}"
                     f"{v.mean_abs_diff:>10.2e}  {verdict}")
    return "\n".join(lines)
