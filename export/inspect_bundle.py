"""A readable summary of a bundle: what it expects, what it ships, how each variant scored."""
from __future__ import annotations

from typing import Any, List, Mapping

from har_export.model_info import op_counts
from har_runtime.bundle import Bundle, TensorInfo
from har_runtime.contract.tiers import TIERS
from har_runtime.recurrent_context import RecurrentContext


def _tensor(info: TensorInfo) -> str:
    shape = "x".join("N" if d < 0 else str(d) for d in info.shape)
    if info.quantization is None:
        return f"{info.dtype}[{shape}]"
    scale, zero = info.quantization
    return f"{info.dtype}[{shape}] scale={scale:.6g} zero_point={zero}"


def _parity(parity: Mapping[str, Any]) -> str:
    if not parity:
        return "no parity results recorded"
    failed = [c for c in parity.get("checks", []) if not c.get("passed")]
    verdict = "pass" if not failed else "FAIL (" + ", ".join(
        f"{c['name']} {c['value']:.6g} vs {c['limit']:.6g}" for c in failed) + ")"
    return (f"accuracy {100 * parity['accuracy']:.2f} %, macro-F1 {parity['macro_f1']:.4f}, "
            f"agreement {100 * parity['agreement']:.2f} %, max|dp| {parity['max_abs_diff']:.2e}"
            f" -> {verdict}")


def _input_norm(bundle: Bundle) -> str:
    norm = bundle.input_norm
    if norm is None:
        return "input norm  none: the models take sensor units"
    return "input norm  (x - mean) / std per channel: " + ", ".join(
        f"{c} {m:.4g}/{s:.4g}" for c, m, s in zip(bundle.spec.model_channels, norm.mean, norm.std))


def _input_ranges(bundle: Bundle) -> str:
    ranges = bundle.training.get("input_ranges") or {}
    widened = [f"{c} x{s:.3g}" for c, s in zip(bundle.spec.model_channels,
                                              ranges.get("scales") or ()) if s != 1.0]
    if not widened:
        return "int8 range  one input range for every channel" + (
            f" ({ranges['skipped']})" if ranges.get("skipped") else "")
    return (f"int8 range  widened to cover the {ranges.get('percentile')}th percentile (std "
            "above includes it): " + ", ".join(widened))


def _tier(bundle: Bundle) -> str:
    check = bundle.training.get("tier") or {}
    if bundle.tier is not None:
        tier = TIERS.get(bundle.tier)
        return f"tier        {bundle.tier}" + (f" ({tier.description})" if tier else "")
    if check.get("requested"):
        return f"tier        none: {check['requested']} was asked for, but {check.get('problem')}"
    return "tier        none recorded"


def _context(bundle: Bundle) -> str:
    context = bundle.context
    if context is None:
        return "none: every window on its own"
    if isinstance(context, RecurrentContext):
        parity = context.parity or {}
        return (f"learned GRU head {context.file} (state {context.state_size}; parity "
                f"{parity.get('agreement', float('nan')):.2%} agreement, max |dp| "
                f"{parity.get('max_abs_diff', float('nan')):.1e} on {parity.get('windows')} "
                "windows)")
    return (f"posture tracker over the window outputs (power {context.power:g}, floor "
            f"{context.floor:g})")


def describe_bundle(bundle: Bundle) -> str:
    """Labels, preprocessing, smoothing, training origin and every variant's I/O, ops and parity."""
    spec, training = bundle.spec, bundle.training
    lines: List[str] = [
        f"bundle      {bundle.path} (schema {bundle.schema_version})",
        "labels      " + ", ".join(f"{i}={name}" for i, name in enumerate(bundle.labels)),
        f"sampling    {spec.sample_rate_hz:g} Hz; window {spec.window} samples "
        f"({spec.window / spec.sample_rate_hz:g} s), hop {spec.hop} "
        f"({spec.hop / spec.sample_rate_hz:g} s); max gap {spec.max_gap_s:g} s"
        + (f"; labels describe the last {spec.labelled} samples (the first {spec.context} are "
           "context)" if spec.context else ""),
        f"channels    {', '.join(spec.channels)} (acc in {spec.acc_unit}, gyro in "
        f"{spec.gyro_unit}); acc mode {spec.acc_mode} -> model input "
        f"{', '.join(spec.model_channels)}",
        _input_norm(bundle),
        _input_ranges(bundle),
        "smoothing   " + ", ".join(f"{k}={v}" for k, v in bundle.smoothing.to_dict().items()),
        f"training    data {training.get('data')}, seed {training.get('seed')}, fingerprint "
        f"{str(training.get('data_fingerprint'))[:16]}, run {training.get('run_dir')}",
        f"recommended {bundle.recommended or 'none (no variant passed the gate)'}",
        _tier(bundle),
        "context     " + _context(bundle),
    ]
    for name, info in bundle.variants.items():
        ops = op_counts(info.path.read_bytes())
        lines += [
            f"variant {name}: {info.file}, {info.size_bytes} bytes, "
            f"{'deployable' if info.deployable else 'NOT deployable'}",
            f"  input  {_tensor(info.input)}",
            f"  output {_tensor(info.output)}",
            "  ops    " + ", ".join(f"{op} x{n}" for op, n in ops.items()),
            f"  parity {_parity(info.parity)}",
        ]
    for name in bundle.files:
        lines.append(f"file {name}")
    return "\n".join(lines)
