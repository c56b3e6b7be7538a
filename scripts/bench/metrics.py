"""Pure helpers of the benchmark report: MAC counting, number formatting, tables, targets.

Standard library only, so the smoke tests can run them in any venv.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

#: The stated targets (docs/BENCHMARKS.md judges every run against them).
TARGET_KERAS_SPEEDUP = 20.0
TARGET_STREAM_OVER_INVOKE = 1.5
TARGET_INGEST = 250_000.0
TARGET_RSS_MB = 60.0
#: Ingest when every line is a different device (burst 1), samples per CPU-second.
TARGET_INGEST_INTERLEAVED = 100_000.0
#: Peak RSS (MiB) of an ingest process serving FLEET_DEVICES[-1] devices.
TARGET_FLEET_RSS_MIB = 120.0
#: Device counts whose ingest runs are fresh processes, for their peak RSS.
FLEET_DEVICES = (1000, 5000)
#: Sample rate of one simulated device (devices served = samples/s / this).
DEVICE_RATE_HZ = 50.0
#: TFLite ops whose multiply-accumulates are counted (everything else is cheap by comparison).
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def dig(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., or None if a level is missing or is a failed result ({"error": ...})."""
    for key in keys:
        if not isinstance(data, dict) or "error" in data or key not in data:
            return None
        data = data[key]
    return data


def _prod(values: Iterable[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _dims(shape: Sequence[Any]) -> list:
    """Shape with unknown (None / -1) dimensions read as 1 (batch 1)."""
    return [1 if d is None or int(d) < 1 else int(d) for d in shape]


def tflite_op_macs(op: str, output_shape: Sequence[Any], weight_shape: Sequence[Any]) -> int:
    """Multiply-accumulates of one TFLite op for one window (the batch dimension is dropped).

    Weight layouts (TFLite schema): CONV_2D [out_c, kh, kw, in_c / groups], DEPTHWISE_CONV_2D
    [1, kh, kw, out_c], FULLY_CONNECTED [units, in]. Other ops count 0.
    """
    if op not in MAC_OPS:
        return 0
    out, w = _dims(output_shape), _dims(weight_shape)
    if len(out) < 2:
        raise ValueError(f"{op}: output shape {list(output_shape)} has no batch dimension")
    if op == "CONV_2D":
        if len(w) != 4:
            raise ValueError(f"CONV_2D weights must be 4-D, got {list(weight_shape)}")
        return _prod(out[1:]) * w[1] * w[2] * w[3]
    if op == "DEPTHWISE_CONV_2D":
        if len(w) != 4:
            raise ValueError(f"DEPTHWISE_CONV_2D weights must be 4-D, got {list(weight_shape)}")
        return _prod(out[1:]) * w[1] * w[2]
    if len(w) != 2:
        raise ValueError(f"FULLY_CONNECTED weights must be 2-D, got {list(weight_shape)}")
    return _prod(out[1:-1]) * w[0] * w[1]


def tflite_graph_macs(ops: Iterable[Mapping[str, Any]]) -> int:
    """MACs per window of a TFLite graph: ops in execution order as dicts with "op", "output"
    (shape), "weights" (shape or None) and, for SPACE_TO_BATCH_ND, "block" (product of the
    block shape).

    The converter writes a dilated convolution as SPACE_TO_BATCH_ND -> CONV_2D ->
    BATCH_TO_SPACE_ND, with the convolution's batch dimension multiplied by the dilation, which
    its static shape (batch 1) does not show; the block size restores that factor.
    """
    total, block = 0, 1
    for op in ops:
        name = op["op"]
        if name == "SPACE_TO_BATCH_ND":
            block = max(1, int(op.get("block") or 1))
        elif name == "BATCH_TO_SPACE_ND":
            block = 1
        elif name in MAC_OPS and op.get("weights") is not None:
            total += block * tflite_op_macs(name, op["output"], op["weights"])
    return total


def keras_layer_macs(kind: str, input_shape: Sequence[Any], output_shape: Sequence[Any],
                     config: Mapping[str, Any]) -> int:
    """Multiply-accumulates of one Keras layer for one window, from its class name and shapes.

    Conv1D/2D, DepthwiseConv1D/2D, SeparableConv1D/2D and Dense count; other layers count 0.
    """
    inp, out = _dims(input_shape), _dims(output_shape)
    kernel = _prod(config.get("kernel_size", (1,)))
    in_ch = inp[-1]
    if kind in ("Conv1D", "Conv2D"):
        return _prod(out[1:]) * kernel * in_ch // int(config.get("groups", 1))
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return _prod(out[1:]) * kernel
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        multiplier = int(config.get("depth_multiplier", 1))
        positions = _prod(out[1:-1])
        return positions * in_ch * multiplier * (kernel + out[-1])
    if kind == "Dense":
        return _prod(out[1:-1]) * in_ch * out[-1]
    return 0


def fmt_ms(value: Optional[float]) -> str:
    """Milliseconds with about three significant digits; 'n/a' for None."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def fmt_ratio(value: Optional[float]) -> str:
    """A ratio as '12.3x' (three significant digits), 'n/a' for None."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def fmt_count(value: Optional[float]) -> str:
    """A count or rate with thousands separators, 'n/a' for None."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}"


def fmt_mib(value: Optional[float]) -> str:
    """MiB with one decimal, 'n/a' for None."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1f}"


def fmt_kib(num_bytes: Optional[int]) -> str:
    """Bytes as KiB with one decimal, 'n/a' for None."""
    return "n/a" if num_bytes is None else f"{num_bytes / 1024:.1f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are str()-ed and '|' is escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, the table {len(headers)} columns")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """A stated performance target and the measured value it is checked against."""

    name: str
    measured: Optional[float]
    limit: float
    higher_is_better: bool
    unit: str

    @property
    def met(self) -> Optional[bool]:
        """True/False, or None when the value could not be measured."""
        if self.measured is None or not math.isfinite(self.measured):
            return None
        return self.measured >= self.limit if self.higher_is_better \
            else self.measured <= self.limit

    def verdict(self) -> str:
        """'met', 'MISSED' or 'not measured'."""
        return {True: "met", False: "MISSED", None: "not measured"}[self.met]


def devices_served(samples_per_s: Optional[float], rate_hz: float) -> Optional[float]:
    """How many devices streaming at `rate_hz` a measured ingest rate keeps up with."""
    if samples_per_s is None or rate_hz <= 0:
        return None
    return samples_per_s / rate_hz


def other_cores_busy(start: Mapping[str, Any], end: Mapping[str, Any]) -> Optional[float]:
    """Average number of cores that processes other than this benchmark kept busy between two
    `machine_info` snapshots (machine busy time minus this process tree's CPU time)."""
    if start.get("machine_busy_s") is None or end.get("machine_busy_s") is None:
        return None
    wall = end["wall"] - start["wall"]
    if wall <= 0:
        return None
    others = (end["machine_busy_s"] - start["machine_busy_s"]) - \
        (end["own_cpu_s"] - start["own_cpu_s"])
    return max(0.0, others / wall)
