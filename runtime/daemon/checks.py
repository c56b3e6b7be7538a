"""What the daemon checks before a sample reaches a device's stream, and what it hints at after.

Magnitudes: a value beyond what any real sensor reports is no measurement (a corrupt packet, a
unit mistake, a hostile sender); it is counted as `implausible` and skipped, never classified.
Timestamps: the sender's unit (`--time-unit`) is divided out to seconds; when a device's samples
are mostly rejected, or far too dense, the stats carry a hint that the unit is wrong.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from har_runtime.contract.units import conversion_factor
from har_runtime.stream import StreamCounters

#: Largest magnitude accepted per channel kind, as (value, unit): the widest full scale of
#: common MEMS parts (+-16 g, +-2000 deg/s) times a margin of 4. The daemon converts it to the
#: sender's units, so it is the same physical bound whatever units sender and bundle use.
PLAUSIBLE_LIMITS = {"acc": (4 * 16.0, "g"), "gyro": (4 * 2000.0, "deg/s")}

#: Timestamp units the daemon reads, as units per second.
TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_TIME_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds",
                    "ns": "nanoseconds"}
#: Samples a device must have sent before its counters can earn a hint.
HINT_MIN_SAMPLES = 200
#: Fewer resampled frames per accepted sample than this means a sampling rate 100 times the
#: model's: no sensor, but seconds read as milliseconds.
DENSE_FRAMES_PER_SAMPLE = 0.01


def plausible_limits(channels: Sequence[str], acc_unit: str, gyro_unit: str) -> np.ndarray:
    """The largest plausible magnitude of each of `channels`, in the sender's units."""
    out = []
    for channel in channels:
        kind = "acc" if channel.startswith("acc") else "gyro"
        limit, unit = PLAUSIBLE_LIMITS[kind]
        out.append(limit * conversion_factor(kind, unit, acc_unit if kind == "acc" else gyro_unit))
    return np.array(out, dtype=np.float64)


def implausible_rows(values: np.ndarray, limits: np.ndarray) -> Optional[np.ndarray]:
    """Boolean mask of the rows of `values` (n, C) with a finite value beyond `limits`, or None
    when there is none (the usual case, decided by one reduction). NaN and inf are left to the
    stream, which counts them as `nonfinite`."""
    if not values.size:
        return None
    peak = np.maximum.reduce(np.abs(values), axis=0)  # NaN propagates: such pushes look closer
    if (peak <= limits).all():
        return None
    rows = ((np.abs(values) > limits) & np.isfinite(values)).any(axis=1)
    return rows if rows.any() else None


def beyond_limits(values: Sequence[float], limits: Sequence[float]) -> bool:
    """Whether one sample has a finite value beyond its limit (`implausible_rows` for one)."""
    return any(limit < abs(v) < math.inf for v, limit in zip(values, limits))


def timestamp_trouble(c: StreamCounters) -> Optional[str]:
    """Why one device's timestamps look like they are in the wrong unit, or None."""
    if c.samples_in < HINT_MIN_SAMPLES:
        return None
    bad = c.nonfinite + c.out_of_order + c.gaps
    if 2 * bad > c.samples_in:
        return (f"{bad} of {c.samples_in} samples were non-finite, out of order or began a gap "
                f"(nonfinite {c.nonfinite}, out_of_order {c.out_of_order}, gaps {c.gaps})")
    if c.frames < c.accepted * DENSE_FRAMES_PER_SAMPLE:
        return f"{c.accepted} samples made only {c.frames} frames (timestamps far too dense)"
    return None


def time_unit_hint(troubled: Sequence[str], why: str, time_unit: str) -> str:
    """The hint for the stats line: which devices, why, and what to try."""
    others = f" (and {len(troubled) - 1} more devices)" if len(troubled) > 1 else ""
    return (f"device {troubled[0]!r}{others}: {why}; timestamps are read as "
            f"{_TIME_UNIT_NAMES[time_unit]} (--time-unit {time_unit}); check the sender's "
            "unit and set --time-unit s, ms, us or ns (phones send Unix milliseconds: ms)")
