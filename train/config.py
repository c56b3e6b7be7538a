"""`TrainConfig`: every choice that shapes a trained model, validated, stored in config.json.

Nothing here imports Keras, so the CLI, presets, the leaderboard and export can build and read
configs before a backend is chosen. Window and hop defaults are the spec's (`DEFAULT_SPEC`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from har_runtime.contract.labels import TASKS
from har_runtime.contract.spec import ACC_MODES, CHANNEL_SETS, DEFAULT_SPEC, PreprocessSpec
from har_runtime.contract.tiers import TIERS
from har_train.dataset import make_spec
from har_train.errors import ConfigError, SplitError
from har_train.models import MODELS
from har_train.splits import DEFAULT_N_VAL, default_split

LR_SCHEDULES = ("plateau", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Every choice that shapes a trained model; stored in config.json.

    `val_subjects` None means "pick `n_val` validation subjects with `split_seed`" from the
    non-test subjects; the test subjects are always the UCI HAR test subjects present.
    """

    data: str = "hapt"
    task: str = "har6"
    channels: str = "acc"
    acc_mode: str = "total"
    window: int = DEFAULT_SPEC.window
    hop: int = DEFAULT_SPEC.hop
    #: Samples before each window that the model also sees (its input is context + window).
    context: int = 0
    #: Hop of the training windows only (None: `hop`); see dataset.build_split_data.
    train_hop: Optional[int] = None
    model: str = "seed_cnn"
    #: Keyword arguments for the model builder, e.g. (("filters", (48, 64, 96)),).
    model_options: Tuple[Tuple[str, Any], ...] = ()
    #: Saturate the standardised input at +-this many standard deviations inside the model, as
    #: a full-int8 input does (see models._normalized_input); 0: no clip.
    input_clip: float = 0.0
    #: Quantisation-aware training: fake int8 quantisation of activations (har_train.qat).
    qat: bool = False
    #: With `qat`: a run folder whose trained model the QAT run starts from (fine-tuning).
    qat_from: Optional[str] = None
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: str = "plateau"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    patience: int = 8
    seed: int = 0
    augment: bool = False
    rotation_deg: float = 5.0
    scale_sigma: float = 0.05
    jitter_sigma: float = 0.05
    class_weight: bool = False
    #: Run folders whose mean softmax is mixed into the labels (har_train.distill); () for none.
    teacher: Tuple[str, ...] = ()
    distill_weight: float = 0.5
    val_subjects: Optional[Tuple[int, ...]] = None
    n_val: int = DEFAULT_N_VAL
    split_seed: int = 0
    preset: Optional[str] = None
    #: Deployment tier the run is meant for (har_runtime.contract.tiers); export checks it.
    tier: Optional[str] = None

    def __post_init__(self) -> None:
        choices = (("task", sorted(TASKS)), ("channels", sorted(CHANNEL_SETS)),
                   ("acc_mode", list(ACC_MODES)), ("model", sorted(MODELS)),
                   ("lr_schedule", list(LR_SCHEDULES)))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        positive = ("window", "hop", "epochs", "batch_size", "patience", "learning_rate")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.context >= 0:
            raise ConfigError(f"context must be >= 0, got {self.context!r}")
        if self.train_hop is not None and not 1 <= self.train_hop <= self.hop:
            raise ConfigError(f"train_hop must be between 1 and hop ({self.hop}), "
                              f"got {self.train_hop!r}")
        if self.qat_from is not None and not self.qat:
            raise ConfigError("qat_from (--qat-from) needs qat (--qat)")
        if self.tier is not None and self.tier not in TIERS:
            raise ConfigError(f"tier must be one of {sorted(TIERS)}, got {self.tier!r}")
        if not self.input_clip >= 0:
            raise ConfigError(f"input_clip must be >= 0 (0: none), got {self.input_clip!r}")
        if not 0.0 <= self.label_smoothing < 1.0 or self.weight_decay < 0:
            raise ConfigError("label_smoothing must be in [0, 1) and weight_decay >= 0")
        if not 0.0 < self.distill_weight <= 1.0:
            raise ConfigError(f"distill_weight must be in (0, 1], got {self.distill_weight!r}")
        if self.val_subjects is not None:
            object.__setattr__(self, "val_subjects", tuple(int(s) for s in self.val_subjects))
        teachers = (self.teacher,) if isinstance(self.teacher, (str, Path)) else self.teacher
        object.__setattr__(self, "teacher", tuple(str(t) for t in teachers))
        object.__setattr__(self, "model_options", _option_pairs(self.model_options))

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["model_options"] = {k: (list(v) if isinstance(v, tuple) else v)
                                 for k, v in self.model_options}
        if self.val_subjects is not None:
            data["val_subjects"] = list(self.val_subjects)
        return data

    def make_spec(self) -> PreprocessSpec:
        """The preprocessing spec these options define."""
        return make_spec(self.task, self.channels, self.acc_mode, self.window, self.hop,
                         context=self.context)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_stored(cls, data: Dict[str, Any]) -> "TrainConfig":
        """The config a run's config.json (or a leaderboard record) holds: other keys (split,
        members) are ignored and options it predates take today's defaults. ConfigError if the
        values are unusable."""
        if not isinstance(data, dict):
            raise ConfigError("training options must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"unusable training options ({exc})") from None


def _option_pairs(options) -> Tuple[Tuple[str, Any], ...]:
    """Model options as sorted (name, value) pairs (lists become tuples, so configs hash)."""
    items = options.items() if isinstance(options, dict) else options
    try:
        pairs = [(str(k), tuple(v) if isinstance(v, list) else v) for k, v in items]
    except (TypeError, ValueError):
        raise ConfigError("model_options must be name/value pairs") from None
    return tuple(sorted(pairs))


def make_split(config: TrainConfig, subjects: Sequence[int]):
    """The config's subject split (UCI test subjects; given or seeded validation subjects)."""
    try:
        return default_split(subjects, val=config.val_subjects, n_val=config.n_val,
                             seed=config.split_seed)
    except SplitError as exc:
        raise ConfigError(str(exc)) from None
