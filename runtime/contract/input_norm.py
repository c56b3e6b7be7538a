"""Per-channel input standardisation done in float before a model runs.

A trained model opens with a per-channel standardisation (`(x - mean) / std`). Inside a full
int8 model that step would run after the input was quantised with one scale for every channel,
so a channel with a small range (body acceleration, an accelerometer next to a gyroscope) would
get a handful of int8 levels. The exporter therefore cuts the standardisation out of the
converted graph and ships its constants in bundle.json; the runtime applies them here, in float,
and every channel reaches the int8 input with the same resolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

import numpy as np


class InputNormError(ValueError):
    """Standardisation constants that are malformed or do not fit the model."""


@dataclass(frozen=True)
class InputNorm:
    """`(x - mean) / std` per model channel (last axis), computed in float32."""

    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.mean or len(self.mean) != len(self.std):
            raise InputNormError("input_norm needs one mean and one std per channel")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in self.mean + self.std):
            raise InputNormError("input_norm mean and std must be finite numbers")
        if not all(s > 0 for s in self.std):
            raise InputNormError("input_norm std must be > 0 for every channel")

    @property
    def channels(self) -> int:
        return len(self.mean)

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, std) as float32 vectors, broadcastable over (n, window, C)."""
        return np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)

    def apply(self, windows: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of `windows` (..., C)."""
        mean, std = self.arrays()
        return (np.asarray(windows, np.float32) - mean) / std

    def to_dict(self) -> Dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputNorm":
        """From bundle.json's `input_norm` object; InputNormError if it is malformed."""
        if not isinstance(data, Mapping) or set(data) != {"mean", "std"}:
            raise InputNormError("input_norm must be an object with exactly 'mean' and 'std'")
        mean, std = data["mean"], data["std"]
        if not isinstance(mean, list) or not isinstance(std, list):
            raise InputNormError("input_norm mean and std must be lists of numbers")
        return cls(tuple(mean), tuple(std))

    @classmethod
    def from_variance(cls, mean, variance, epsilon: float = 1e-7) -> "InputNorm":
        """From a Keras `Normalization` layer's mean and variance, with its float32 arithmetic
        (std = max(sqrt(variance), epsilon))."""
        mean32 = np.asarray(mean, np.float32).reshape(-1)
        std32 = np.maximum(np.sqrt(np.asarray(variance, np.float32).reshape(-1)),
                           np.float32(epsilon))
        return cls(tuple(float(v) for v in mean32), tuple(float(v) for v in std32))
