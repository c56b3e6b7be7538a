"""Physical units of sensor channels, and conversion into the units a spec declares."""
from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

import numpy as np

STANDARD_GRAVITY = 9.80665  # m/s² per g (CGPM 1901)

#: Factor that takes a value in the named unit to g.
ACC_UNITS = {"g": 1.0, "m/s2": 1.0 / STANDARD_GRAVITY, "m/s^2": 1.0 / STANDARD_GRAVITY}
#: Factor that takes a value in the named unit to rad/s.
GYRO_UNITS = {"rad/s": 1.0, "deg/s": math.pi / 180.0}


def conversion_factor(kind: str, source_unit: str, target_unit: str) -> float:
    """Multiplier taking `kind` ("acc" or "gyro") values from `source_unit` to `target_unit`."""
    table = ACC_UNITS if kind == "acc" else GYRO_UNITS
    for unit in (source_unit, target_unit):
        if unit not in table:
            raise ValueError(f"unknown {kind} unit {unit!r}; choose from {sorted(table)}")
    return table[source_unit] / table[target_unit]


@functools.lru_cache(maxsize=64)
def channel_scale(channels: Tuple[str, ...], acc_from: str, acc_to: str,
                  gyro_from: str = "rad/s", gyro_to: str = "rad/s") -> Optional[np.ndarray]:
    """Per-channel factors (read-only) that take `channels` to the target units, or None when
    all are 1. Cached: every new device stream of the daemon asks for the same few."""
    acc = conversion_factor("acc", acc_from, acc_to)
    gyro = conversion_factor("gyro", gyro_from, gyro_to)
    scale = np.array([acc if c.startswith("acc") else gyro for c in channels], dtype=np.float64)
    if np.all(scale == 1.0):
        return None
    scale.setflags(write=False)
    return scale


def convert_samples(samples: np.ndarray, channels, acc_from: str, acc_to: str,
                    gyro_from: str = "rad/s", gyro_to: str = "rad/s") -> np.ndarray:
    """Return `samples` (n, len(channels)) with acc and gyro columns in the target units."""
    scale = channel_scale(tuple(channels), acc_from, acc_to, gyro_from, gyro_to)
    return samples if scale is None else samples * scale
