"""Typed results of on-device classification: per-window predictions and activity changes.

Both serialise to one JSON object per line (`to_json`), the daemon's output format; the `type`
key tells a consumer which one it got.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from har_runtime.contract.smoothing import UNKNOWN

#: Decimal places kept for probabilities in JSON (float32 carries ~7 significant digits).
_PROB_DECIMALS = 6
#: What json.dumps(obj, separators=(",", ":")) uses, made once: dumps builds a new encoder
#: on every call that passes options, and the daemon serialises every event.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class Prediction:
    """The classification of one window of one device's stream.

    `t_end` is the timestamp (source clock, seconds) of the window's last resampled frame.
    `label` is the window's own argmax and `confidence` its probability; `smoothed_label` is the
    activity after smoothing (`unknown` when not confident enough). `latency_s` runs from the
    arrival of the samples that completed the window to the moment the prediction existed.
    """

    device: str
    t_end: float
    label: str
    probabilities: Mapping[str, float]
    smoothed_label: str
    confidence: float
    latency_s: float

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (`type` = "prediction")."""
        return {
            "type": "prediction",
            "device": self.device,
            "t_end": self.t_end,
            "label": self.label,
            "confidence": round(float(self.confidence), _PROB_DECIMALS),
            "smoothed_label": self.smoothed_label,
            "probabilities": {k: round(float(v), _PROB_DECIMALS)
                              for k, v in self.probabilities.items()},
            "latency_s": self.latency_s,
        }

    def to_json(self) -> str:
        """One compact JSON line."""
        return _COMPACT.encode(self.to_dict())


@dataclass(frozen=True)
class ActivityChange:
    """The smoothed activity of `device` switched from `previous` to `current` at time `t`."""

    device: str
    t: float
    previous: str
    current: str
    confidence: float

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (`type` = "change")."""
        return {
            "type": "change",
            "device": self.device,
            "t": self.t,
            "previous": self.previous,
            "current": self.current,
            "confidence": round(float(self.confidence), _PROB_DECIMALS),
        }

    def to_json(self) -> str:
        """One compact JSON line."""
        return _COMPACT.encode(self.to_dict())


class ActivityTracker:
    """Turns a device's predictions into change events (the first activity counts as a change
    from `unknown`)."""

    def __init__(self) -> None:
        self.current = UNKNOWN

    def update(self, prediction: Prediction) -> Optional[ActivityChange]:
        """Return the change this prediction causes, if any."""
        if prediction.smoothed_label == self.current:
            return None
        change = ActivityChange(prediction.device, prediction.t_end, self.current,
                                prediction.smoothed_label, prediction.confidence)
        self.current = prediction.smoothed_label
        return change
