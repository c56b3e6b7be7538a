"""Smoothing per-window predictions into a stable activity.

A single odd window (a stumble, a phone bump) should not flip the reported activity. The smoother
averages the last `k` probability vectors (or votes), reports `unknown` below `min_confidence`,
and only switches to a new activity after it has won `hysteresis` consecutive windows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

UNKNOWN = "unknown"
METHODS = ("prob_average", "vote")


@dataclass(frozen=True)
class SmoothingSettings:
    """Named smoothing parameters; the bundle carries defaults, the daemon may override them."""

    method: str = "prob_average"
    k: int = 3
    min_confidence: float = 0.4
    hysteresis: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"smoothing method must be one of {list(METHODS)}")
        if self.k < 1 or self.hysteresis < 1:
            raise ValueError("smoothing k and hysteresis must be >= 1")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be in [0, 1]")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]]) -> "SmoothingSettings":
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown smoothing settings {unknown}; known: {sorted(known)}")
        return cls(**data)


#: Chosen on validation subjects 17, 21, 26 with scripts/tune_smoothing.py: averaging 3 windows
#: (3.8 s) costs 0.1 point of window accuracy against none, while k=5 or hysteresis=2 lag at
#: every activity change and cost 0.5-2 points; 0.4 abstains only on truly split votes.
DEFAULT_SMOOTHING = SmoothingSettings()
#: For bundles with a learned context head, which already answers from the past: on the
#: validation subjects of four acc3-int8-hapt12 seeds, the default smoothing on top cost 3.2
#: points of stream accuracy and 0.13 of macro-F1 (it lags the two-window transitions and
#: abstains), so these bundles report the head's answer as it is.
CONTEXT_SMOOTHING = SmoothingSettings(k=1, min_confidence=0.0)


class Smoother:
    """Stateful smoother for one device's stream of probability vectors."""

    def __init__(self, labels: Sequence[str], settings: SmoothingSettings = DEFAULT_SMOOTHING):
        self.labels = tuple(labels)
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        """Forget history (after a gap the old activity says nothing about the new one)."""
        # A ring of the last k vectors as Python floats: with a handful of classes, list
        # arithmetic costs less than the numpy calls it replaces, once per window per device.
        self._ring: List[List[float]] = []
        self._next = 0
        self.current = UNKNOWN
        self._candidate: Optional[str] = None
        self._streak = 0

    def update(self, probs: Union[np.ndarray, List[float]]) -> str:
        """Add one window's probabilities (an array, or a list of floats); return the smoothed
        activity label."""
        values = probs if isinstance(probs, list) else \
            np.asarray(probs, dtype=np.float64).reshape(-1).tolist()
        if len(values) != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} probabilities, got {len(values)}")
        settings = self.settings
        if settings.method == "vote":
            row = [0.0] * len(values)
            row[argmax(values)] = 1.0
        else:
            row = values
        if len(self._ring) < settings.k:
            self._ring.append(row)
        else:
            self._ring[self._next] = row
        self._next = (self._next + 1) % settings.k
        # Summed slot by slot in ring order, then divided: bit for bit what np.mean(axis=0)
        # of the stacked ring gives.
        ring, n = self._ring, len(self._ring)
        if n == 3:  # the default k, in one pass: (r0 + r1) + r2, as the loop below adds them
            mean = [(a + b + c) / 3 for a, b, c in zip(*ring)]
        else:
            total = ring[0]
            for other in ring[1:]:
                total = [a + b for a, b in zip(total, other)]
            mean = [v / n for v in total]
        best = argmax(mean)
        confident = settings.method == "vote" or mean[best] >= settings.min_confidence
        return self._apply_hysteresis(self.labels[best] if confident else UNKNOWN)

    def _apply_hysteresis(self, proposal: str) -> str:
        if proposal == self.current:
            self._candidate, self._streak = None, 0
            return self.current
        if proposal == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = proposal, 1
        if self._streak >= self.settings.hysteresis or self.current == UNKNOWN:
            self.current, self._candidate, self._streak = proposal, None, 0
        return self.current


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, as np.argmax picks it: the first maximum, or the first NaN."""
    best, top = 0, values[0]
    for i, v in enumerate(values):
        if v > top or v != v:
            if v != v:
                return i
            best, top = i, v
    return best
