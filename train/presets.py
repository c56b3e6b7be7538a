"""Named training presets: a preset fills TrainConfig fields; explicit options override it."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping, Optional, Tuple

from har_train.config import TrainConfig
from har_train.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """A named bundle of TrainConfig values, with what it is for."""

    name: str
    description: str
    options: Tuple[Tuple[str, Any], ...]

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.options)


_PI_RECIPE: Tuple[Tuple[str, Any], ...] = (
    ("model", "resnet1d"), ("epochs", 40), ("augment", True), ("learning_rate", 2e-3),
    ("lr_schedule", "cosine"), ("label_smoothing", 0.1), ("patience", 10), ("tier", "pi"))

PRESETS: Dict[str, Preset] = {p.name: p for p in (
    Preset("seed", "the KCC2020 tutorial baseline (seed_cnn, accelerometer, no augmentation)",
           (("model", "seed_cnn"), ("channels", "acc"), ("epochs", 30), ("augment", False),
            ("learning_rate", 1e-3))),
    Preset("acc3-fast", "resnet1d on the accelerometer with rotation augmentation; "
           "minutes on a laptop CPU",
           (("model", "resnet1d"), ("channels", "acc"), ("epochs", 25), ("batch_size", 64),
            ("augment", True), ("learning_rate", 2e-3), ("lr_schedule", "cosine"),
            ("label_smoothing", 0.05), ("patience", 8))),
    # Chosen on validation subjects (docs/RESULTS_CHOICES.md): label smoothing 0.1 and a
    # 60-epoch cosine schedule beat the 40-epoch recipe on accuracy and on int8 agreement.
    Preset("acc3-int8", "tiny_dscnn (< 20 k params) on the accelerometer, for int8 / MCU export",
           (("model", "tiny_dscnn"), ("channels", "acc"), ("epochs", 60), ("augment", True),
            ("learning_rate", 3e-3), ("lr_schedule", "cosine"), ("label_smoothing", 0.1),
            ("patience", 15), ("tier", "mcu"))),
    Preset("acc6", "resnet1d on accelerometer + gyroscope with rotation augmentation",
           (("model", "resnet1d"), ("channels", "acc_gyro"), ("epochs", 25), ("augment", True),
            ("learning_rate", 2e-3), ("lr_schedule", "cosine"), ("label_smoothing", 0.05),
            ("patience", 8))),
    Preset("acc6-int8", "acc3-int8's recipe on accelerometer + gyroscope, for int8 / MCU export",
           (("model", "tiny_dscnn"), ("channels", "acc_gyro"), ("epochs", 60),
            ("augment", True), ("learning_rate", 3e-3), ("lr_schedule", "cosine"),
            ("label_smoothing", 0.1), ("patience", 15), ("tier", "mcu"))),
    # Chosen on validation macro-F1 (docs/RESULTS_CHOICES.md): class weights lift the
    # rare postural transitions from 0.79 to 0.84 macro-F1 on the validation subjects; 2.56 s of
    # context before each window, from 0.80 to 0.85 on the accelerometer alone.
    Preset("acc3-int8-hapt12", "acc3-int8 for the 12 HAPT classes (with transitions): "
           "class weights for the rare transitions, 128 samples of context",
           (("model", "tiny_dscnn"), ("task", "hapt12"), ("channels", "acc"), ("context", 128),
            ("epochs", 60), ("augment", True), ("learning_rate", 3e-3),
            ("lr_schedule", "cosine"), ("label_smoothing", 0.1), ("patience", 15),
            ("class_weight", True), ("tier", "mcu"))),
    Preset("acc6-int8-hapt12", "acc6-int8 for the 12 HAPT classes (with transitions): "
           "class weights for the rare transitions",
           (("model", "tiny_dscnn"), ("task", "hapt12"), ("channels", "acc_gyro"),
            ("epochs", 60), ("augment", True), ("learning_rate", 3e-3),
            ("lr_schedule", "cosine"), ("label_smoothing", 0.1), ("patience", 15),
            ("class_weight", True), ("tier", "mcu"))),
    # Pi / phone tier (int8 <= 256 KiB, <= 2 ms per window on one core): resnet1d's int8 file
    # is ~104 KiB, p50 0.34 ms per window (0.65 ms with 128 samples of context) with
    # tflite-runtime on one core of the dev machine; the int8 recipe of the MCU presets.
    Preset("acc3-pi", "resnet1d (87 k params) on the accelerometer, int8 for a Pi / phone",
           _PI_RECIPE + (("channels", "acc"),)),
    Preset("acc6-pi", "resnet1d (87 k params) on accelerometer + gyroscope, int8 for a Pi / "
           "phone", _PI_RECIPE + (("channels", "acc_gyro"),)),
    Preset("acc3-pi-hapt12", "acc3-pi for the 12 HAPT classes: class weights, 128 samples of "
           "context", _PI_RECIPE + (("channels", "acc"), ("task", "hapt12"), ("context", 128),
                                    ("class_weight", True))),
)}


def make_config(preset: Optional[str] = None,
                overrides: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    """TrainConfig from defaults, then the preset's values, then non-None `overrides`."""
    values: Dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        values.update(PRESETS[preset].as_dict())
        values["preset"] = preset
    known = {f.name for f in fields(TrainConfig)}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError(f"unknown training option {key!r}")
        if value is not None:
            values[key] = value
    return TrainConfig(**values)
