"""Export end to end: run folder -> variants -> parity gate -> bundle; and re-verification.

Plain functions the CLI wraps. Windows come from `har_train.dataset.load_run`, which rebuilds the
run's exact subject split: calibration uses training subjects only, the gate test subjects only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from har_export.bundle_writer import check_out, recommend, write_bundle
from har_export.c_array import c_array_sources
from har_export.context_export import CONTEXT_FILE, export_context
from har_export.convert import (DEFAULT_CALIBRATION_SIZE, VARIANTS, calibration_summary,
                                check_model_io, convert_variants, input_limit, int8_calibration,
                                keras_probabilities, load_keras_model, representative_indices,
                                split_input_norm)
from har_export.errors import InputError, OptionError
from har_export.input_ranges import InputRanges, fold_input_ranges
from har_export.parity import ParityReport, ParityThresholds, VariantParity, run_gate
from har_runtime.bundle import Bundle, BundleError, load_bundle, sha256_file
from har_runtime.context import posture_filter
from har_runtime.contract.input_norm import InputNorm
from har_runtime.contract.smoothing import (CONTEXT_SMOOTHING, DEFAULT_SMOOTHING,
                                            SmoothingSettings)
from har_runtime.contract.tiers import TIERS
from har_train.dataset import RunData, load_run
from har_train.errors import DataError

MODEL_FILE = "model.keras"
C_ARRAY_STEM = "model_int8"
#: The float32 gate's max |dp| for a quantisation-aware model (har-train --qat): its float32
#: file computes the same fake quantisation, and an activation exactly on a rounding boundary
#: may land one int8 step away from Keras's (measured: 1.3e-3 on acc3-int8 --qat, seed 0).
QAT_FLOAT32_MAX_ABS_DIFF = 0.02
#: Where export steps are announced: one line per call.
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    """What `export_model` builds and how strictly it judges it."""

    variants: Tuple[str, ...] = VARIANTS
    calibration_size: int = DEFAULT_CALIBRATION_SIZE
    seed: int = 0
    thresholds: ParityThresholds = field(default_factory=ParityThresholds)
    recommend: Optional[str] = None
    c_array: bool = False
    overwrite: bool = False
    #: Percentile each channel's int8 input range covers (`input_ranges`); None: one range.
    input_range_percentile: Optional[float] = None
    #: Keep tensor names and the signature in the .tflite files (`strip_names`).
    keep_tensor_names: bool = False
    #: Deployment tier to check the int8 file against (None: the run's `tier`, if any).
    tier: Optional[str] = None
    #: Ship the posture tracker (`har_runtime.context.posture_filter`) as the bundle's context.
    posture_context: bool = False
    #: A `har-train context` folder: its learned head, gated, becomes the bundle's context.
    context_dir: Optional[Path] = None

    def check(self) -> None:
        """OptionError for combinations that cannot work, before any slow step runs."""
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown or not self.variants:
            raise OptionError(f"variants must be a non-empty subset of {list(VARIANTS)}")
        if self.calibration_size < 1:
            raise OptionError("calibration size must be >= 1")
        percentile = self.input_range_percentile
        if percentile is not None and not 0.0 < percentile <= 100.0:
            raise OptionError(f"input range percentile must be in (0, 100], got {percentile}")
        if self.tier is not None and self.tier not in TIERS:
            raise OptionError(f"unknown tier {self.tier!r}; choose from {sorted(TIERS)}")
        if self.posture_context and self.context_dir is not None:
            raise OptionError("--posture-context and --context both set the bundle's context; "
                              "choose one")
        if self.c_array and "int8" not in self.variants:
            raise OptionError("--c-array needs the int8 variant")
        if self.recommend is not None and self.recommend not in self.variants:
            raise OptionError(f"cannot recommend {self.recommend!r}: it is not being converted")


@dataclass(frozen=True)
class ExportResult:
    bundle: Path
    report: ParityReport
    recommended: Optional[str]


@dataclass(frozen=True)
class VerifyResult:
    bundle: Bundle
    report: ParityReport
    #: Variants the bundle marks deployable that fail the gate now.
    regressions: Tuple[str, ...]


def _load_run(run_dir: Path) -> RunData:
    try:
        return load_run(run_dir)
    except DataError as exc:
        raise InputError(f"run folder {run_dir}: {exc}") from None


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None


def training_metadata(run_dir: Path, model_path: Path, run: RunData) -> Dict[str, Any]:
    """What the bundle records about the run it came from (audit trail and `verify` input)."""
    fingerprint = run_dir / "fingerprint.txt"
    return {
        "run_dir": str(run_dir.resolve()),
        "model_sha256": sha256_file(model_path),
        "data": run.config.get("data"),
        "data_fingerprint": fingerprint.read_text().strip() if fingerprint.is_file() else None,
        "seed": run.config.get("seed"),
        "split": {k: list(v) for k, v in run.data.split.to_dict().items()},
        "versions": _read_json(run_dir / "versions.json"),
        "config": run.config,
    }


def calibration_windows(run: RunData, size: int, seed: int) -> Tuple[np.ndarray, Mapping]:
    """int8 calibration windows from the training subjects only, class-balanced and seeded."""
    train = run.data.train
    idx = representative_indices(train.y, size, seed)
    leaked = set(train.subject[idx].tolist()) & set(run.data.split.test)
    if leaked:
        raise InputError(f"calibration would use test subjects {sorted(leaked)}")
    summary = calibration_summary(train.y, train.subject, idx, seed, run.spec.num_classes)
    return train.x[idx], summary


def build_variants(model: Any, variants: Sequence[str], calibration: np.ndarray,
                   input_range_percentile: Optional[float] = None, keep_names: bool = False,
                   verbose: bool = False, progress: Optional[Progress] = None
                   ) -> Tuple[Dict[str, bytes], Optional[InputNorm], InputRanges]:
    """`model`'s TFLite variants as har-export builds them: standardisation cut out of the graph
    (`split_input_norm`), per-channel input ranges folded in when a percentile is given, int8
    calibrated on `calibration` (sensor units) clipped to the graph's input limit, tensor names
    stripped unless `keep_names`; TensorFlow's native logs shown only when `verbose`.

    Returns (variant bytes, the standardisation the runtime applies first, input-range record).
    """
    core, norm = split_input_norm(model)
    limit = input_limit(core)
    core, norm, ranges = fold_input_ranges(core, norm, calibration, limit,
                                           input_range_percentile)
    blobs = convert_variants(core, variants, int8_calibration(calibration, norm, limit),
                             keep_names, verbose, progress)
    return blobs, norm, ranges


def describe_verdict(parity: VariantParity) -> str:
    """One progress line for a variant's gate verdict."""
    if parity.passed:
        return (f"parity gate {parity.variant}: pass (agreement {100 * parity.agreement:.2f} %, "
                f"accuracy {100 * parity.accuracy:.2f} %)")
    failed = "; ".join(c.describe() for c in parity.checks if not c.passed)
    return f"parity gate {parity.variant}: FAIL ({failed})"


def _gate(model: Any, models: Mapping[str, bytes], run: RunData, thresholds: ParityThresholds,
          norm: Optional[InputNorm], say: Progress) -> ParityReport:
    test = run.data.test
    return run_gate(models, test.x, test.y, test.subject, keras_probabilities(model, test.x),
                    thresholds, norm, on_variant=lambda v: say(describe_verdict(v)))


def tier_check(requested: Optional[str], models: Mapping[str, bytes],
               context_bytes: int = 0) -> Dict[str, Any]:
    """The bundle's `training.tier` record: the tier asked for, the int8 file's size (plus a
    learned context head's, which the device holds too) against its budget, and `met` (the
    bundle's top-level `tier` is `requested` only when met). The latency budget is checked
    where the model runs (`har-runtime bench`)."""
    if requested is None:
        return {"requested": None, "met": False, "problem": "no tier requested"}
    tier = TIERS[requested]
    record: Dict[str, Any] = {"requested": requested, "max_int8_bytes": tier.max_int8_bytes,
                              "max_window_ms": tier.max_window_ms}
    if "int8" not in models:
        return {**record, "met": False, "problem": "no int8 variant was converted"}
    problem = tier.size_problem(len(models["int8"]) + context_bytes)
    if problem and context_bytes:
        problem = problem.replace("int8 file", f"int8 file + context head ({context_bytes:,} "
                                  "bytes)", 1)
    return {**record, "int8_bytes": len(models["int8"]), "context_bytes": context_bytes,
            "met": problem is None, "problem": problem}


def is_qat_model(model: Any) -> bool:
    """Whether `model` holds har-train's fake-quantisation layers (`har_train.qat`)."""
    from har_train.qat import quant_layers

    return bool(quant_layers(model))


def qat_thresholds(thresholds: ParityThresholds) -> ParityThresholds:
    """`thresholds` with the float32 max |dp| widened to at least QAT_FLOAT32_MAX_ABS_DIFF
    (agreement stays as strict)."""
    limit = thresholds.float32.max_abs_diff
    if limit is None or limit >= QAT_FLOAT32_MAX_ABS_DIFF:
        return thresholds
    return thresholds.with_overrides([f"float32.max_abs_diff={QAT_FLOAT32_MAX_ABS_DIFF}"])


def _silent(message: str) -> None:
    """The default progress sink: library callers see nothing."""


def _context(options: ExportOptions, run: RunData, model: Any, verbose: bool,
             say: Progress) -> Tuple[Any, SmoothingSettings, Dict[str, bytes]]:
    """The bundle's context, smoothing and extra files: the posture tracker, or the learned
    head (gated here; its file ships with the bundle, and its answer is reported unsmoothed)."""
    if options.context_dir is None:
        tracker = posture_filter(run.spec.labels) if options.posture_context else None
        return tracker, DEFAULT_SMOOTHING, {}
    head = export_context(options.context_dir, run.spec.labels,
                          keras_probabilities(model, run.data.test.x), verbose, say)
    parity = head.settings.parity
    say(f"context head: parity {parity['agreement']:.2%} agreement, max |dp| "
        f"{parity['max_abs_diff']:.1e} on {parity['windows']} test windows")
    return head.settings, CONTEXT_SMOOTHING, {CONTEXT_FILE: head.content}


def export_model(model_path, out, options: ExportOptions = ExportOptions(), run_dir=None,
                 verbose: bool = False, progress: Optional[Progress] = None) -> ExportResult:
    """Convert a run's model to every requested variant, gate them and write the bundle.

    The bundle is written even when a variant fails the gate (that variant deployable=false);
    the caller decides what a failure means (the CLI exits 3). `progress` is told of each step
    (the CLI prints them); TensorFlow's native logs are shown only when `verbose`.
    """
    say = progress or _silent
    options.check()
    model_path, out = Path(model_path), Path(out)
    check_out(out, options.overwrite)
    run_dir = Path(run_dir) if run_dir is not None else model_path.parent
    say(f"loading {model_path}; rebuilding the windows of run folder {run_dir}")
    model = load_keras_model(model_path)
    run = _load_run(run_dir)
    check_model_io(model, run.spec.input_shape, run.spec.num_classes)
    calibration, calib_summary = calibration_windows(run, options.calibration_size, options.seed)
    models, norm, ranges = build_variants(model, options.variants, calibration,
                                          options.input_range_percentile,
                                          options.keep_tensor_names, verbose, say)
    thresholds = options.thresholds
    if is_qat_model(model):
        thresholds = qat_thresholds(thresholds)
        say("quantisation-aware model: int8 takes its trained activation ranges; the float32 "
            f"gate allows max|dp| {thresholds.float32.max_abs_diff:g}")
    report = _gate(model, models, run, thresholds, norm, say)
    context, smoothing, extra = _context(options, run, model, verbose, say)
    if options.c_array:
        sources = c_array_sources(models["int8"], C_ARRAY_STEM, report.variants["int8"].passed,
                                  norm)
        extra.update({name: text.encode() for name, text in sources.items()})
    training = training_metadata(run_dir, model_path, run)
    training["calibration"] = calib_summary
    training["input_ranges"] = ranges.to_dict()
    training["tensor_names"] = "kept" if options.keep_tensor_names else "stripped"
    training["tier"] = tier_check(options.tier or run.config.get("tier"), models,
                                  len(extra.get(CONTEXT_FILE, b"")))
    if training["tier"]["requested"] and not training["tier"]["met"]:
        say(f"tier {training['tier']['requested']}: {training['tier']['problem']}; the bundle "
            "records no tier")
    chosen = recommend({n: v.passed for n, v in report.variants.items()}, options.recommend)
    say(f"writing bundle to {out}")
    write_bundle(out, spec=run.spec, models=models, report=report, training=training,
                 recommended=chosen, extra_files=extra, overwrite=options.overwrite,
                 input_norm=norm,
                 tier=training["tier"]["requested"] if training["tier"]["met"] else None,
                 context=context, smoothing=smoothing)
    return ExportResult(out, report, chosen)


def open_bundle(path) -> Bundle:
    """load_bundle with its errors turned into InputError."""
    try:
        return load_bundle(path)
    except BundleError as exc:
        raise InputError(str(exc)) from None


def verify_bundle(bundle_path, run_dir=None, overrides: Sequence[str] = ()) -> VerifyResult:
    """Re-run the parity gate on a bundle's files with the run it records (or `run_dir`)."""
    bundle = open_bundle(bundle_path)
    run_dir = run_dir or bundle.training.get("run_dir")
    if not run_dir:
        raise OptionError("the bundle records no run folder; pass --run DIR")
    run_dir = Path(run_dir)
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        raise InputError(f"{model_path} does not exist; pass --run with the training run folder")
    expected = bundle.training.get("model_sha256")
    if expected and sha256_file(model_path) != expected:
        raise InputError(f"{model_path} is not the model this bundle was exported from "
                         "(sha256 differs)")
    run = _load_run(run_dir)
    if run.spec != bundle.spec:
        raise InputError("the run's spec.json differs from the bundle's spec")
    thresholds = (ParityThresholds.from_dict(bundle.gate) if bundle.gate
                  else ParityThresholds()).with_overrides(overrides)
    model = load_keras_model(model_path)
    models = {name: info.path.read_bytes() for name, info in bundle.variants.items()}
    test = run.data.test
    report = run_gate(models, test.x, test.y, test.subject,
                      keras_probabilities(model, test.x), thresholds, bundle.input_norm)
    regressions = tuple(n for n in report.failed() if bundle.variants[n].deployable)
    return VerifyResult(bundle, report, regressions)

