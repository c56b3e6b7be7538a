"""The preprocessing spec: the single definition of what a model sees.

Training builds its windows from a `PreprocessSpec`, the export bundle stores it as JSON, and the
device rebuilds the identical pipeline from that JSON. Change a number here and every stage
follows, which is the point: train/device skew cannot creep in through a second copy.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple

from har_runtime.contract.units import ACC_UNITS, GYRO_UNITS

SPEC_VERSION = 1

ACC_CHANNELS: Tuple[str, ...] = ("acc_x", "acc_y", "acc_z")
GYRO_CHANNELS: Tuple[str, ...] = ("gyro_x", "gyro_y", "gyro_z")
ALL_CHANNELS: Tuple[str, ...] = ACC_CHANNELS + GYRO_CHANNELS

#: Channel sets a user can name on the command line.
CHANNEL_SETS: Dict[str, Tuple[str, ...]] = {"acc": ACC_CHANNELS, "acc_gyro": ALL_CHANNELS}

#: How the accelerometer reaches the model. "total" is the raw signal (gravity included, which
#: carries the phone's orientation and so separates sitting/standing/laying); "body" subtracts a
#: causal gravity estimate; "body_gravity" feeds both (6 accelerometer-derived channels).
ACC_MODES = ("total", "body", "body_gravity")


class SpecError(ValueError):
    """A spec that cannot describe a valid pipeline (bad numbers, unknown names)."""


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything between raw sensor samples and the model's input tensor.

    Windows are `window` samples long at `sample_rate_hz`, a new one every `hop` samples.
    A window's label is the most frequent label of its last `label_span` samples (the whole
    window when 0), kept only when that label covers at least `min_label_fraction` of them and
    belongs to `labels` (see `windowing.window_labels`). With `label_span` < `window` the model
    also sees `window - label_span` samples of context before the span it answers for, and a
    prediction still refers to the window's last sample, so the stream stays causal.
    """

    sample_rate_hz: float = 50.0
    window: int = 128
    hop: int = 64
    channels: Tuple[str, ...] = ACC_CHANNELS
    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    acc_mode: str = "total"
    #: Length of the causal moving-average gravity estimate, in samples (only for body modes).
    gravity_taps: int = 25
    #: Source label ids, in model output order.
    label_ids: Tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    #: Human-readable names, same order as `label_ids`.
    labels: Tuple[str, ...] = (
        "walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying",
    )
    min_label_fraction: float = 1.0
    #: Samples at the end of each window that its label describes; 0: the whole window.
    label_span: int = 0
    #: Gaps in a live stream longer than this reset the window buffer (no window spans a gap).
    max_gap_s: float = 0.5
    version: int = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        problems = []
        if not self.sample_rate_hz > 0:
            problems.append("sample_rate_hz must be > 0")
        if self.window < 2 or self.hop < 1:
            problems.append("window must be >= 2 and hop >= 1")
        unknown = [c for c in self.channels if c not in ALL_CHANNELS]
        if unknown or not self.channels:
            problems.append(f"unknown channels {unknown}; choose from {list(ALL_CHANNELS)}")
        if self.acc_unit not in ACC_UNITS:
            problems.append(f"acc_unit must be one of {sorted(ACC_UNITS)}")
        if self.gyro_unit not in GYRO_UNITS:
            problems.append(f"gyro_unit must be one of {sorted(GYRO_UNITS)}")
        if self.acc_mode not in ACC_MODES:
            problems.append(f"acc_mode must be one of {list(ACC_MODES)}")
        if self.acc_mode != "total" and not any(c in ACC_CHANNELS for c in self.channels):
            problems.append("body acc modes need accelerometer channels")
        if self.gravity_taps < 1:
            problems.append("gravity_taps must be >= 1")
        if len(self.label_ids) != len(self.labels) or not self.labels:
            problems.append("label_ids and labels must be non-empty and the same length")
        if not 0 <= self.label_span <= self.window:
            problems.append("label_span must be between 0 (the whole window) and window")
        if not 0.0 < self.min_label_fraction <= 1.0:
            problems.append("min_label_fraction must be in (0, 1]")
        if self.version != SPEC_VERSION:
            problems.append(f"spec version {self.version} is not supported "
                            f"(this is {SPEC_VERSION})")
        if problems:
            raise SpecError("; ".join(problems))

    # -- derived shapes -------------------------------------------------------------------
    @property
    def history(self) -> int:
        """Raw samples needed before a window's first sample (for the causal gravity filter)."""
        return self.gravity_taps - 1 if self.acc_mode != "total" else 0

    @property
    def labelled(self) -> int:
        """Samples at the end of each window that decide its label."""
        return self.label_span or self.window

    @property
    def context(self) -> int:
        """Samples the model sees before the labelled span."""
        return self.window - self.labelled

    @functools.cached_property
    def model_channels(self) -> Tuple[str, ...]:
        """Names of the model's input channels, in tensor order."""
        out = []
        for name in self.channels:
            if name in ACC_CHANNELS and self.acc_mode == "body":
                out.append(name.replace("acc", "body_acc"))
            elif name in ACC_CHANNELS and self.acc_mode == "body_gravity":
                out.append(name.replace("acc", "body_acc"))
            else:
                out.append(name)
        if self.acc_mode == "body_gravity":
            out.extend(c.replace("acc", "gravity") for c in self.channels if c in ACC_CHANNELS)
        return tuple(out)

    @functools.cached_property
    def input_shape(self) -> Tuple[int, int]:
        return (self.window, len(self.model_channels))

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def label_index(self) -> Dict[int, int]:
        """Map from source label id to model class index."""
        return {lid: i for i, lid in enumerate(self.label_ids)}

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("channels", "label_ids", "labels"):
            d[key] = list(d[key])
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreprocessSpec":
        if not isinstance(data, Mapping):
            raise SpecError("spec must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown spec fields {unknown}")
        kwargs = dict(data)
        for key in ("channels", "label_ids", "labels"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SpecError(str(exc)) from None

    @classmethod
    def from_json(cls, text: str) -> "PreprocessSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)


#: The defaults (UCI HAR windowing: 50 Hz, 2.56 s windows, 50 % overlap), stated once: other
#: modules read their default rate, window, hop and gap from here.
DEFAULT_SPEC = PreprocessSpec()
