"""`TrainConfig`: every choice that shapes a trained model, validated, stored in config.json.

Nothing here imports Keras, so the CLI, presets, the leaderboard and export can build and read
configs before a backend is chosen. Window and hop defaults are the spec's (`DEFAULT_SPEC`):
2.56 s windows with 50 % overlap at whatever rate the data has (`for_data`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from har_runtime.contract.labels import TASKS
from har_runtime.contract.spec import ACC_MODES, CHANNEL_SETS, DEFAULT_SPEC, PreprocessSpec
from har_runtime.contract.tiers import TIERS
from har_runtime.contract.units import ACC_UNITS, GYRO_UNITS
from har_train.dataset import make_spec
from har_train.errors import ConfigError, SplitError
from har_train.models import MODELS
from har_train.splits import DEFAULT_N_VAL, UCI_TEST_SUBJECTS, default_split, pick_test

LR_SCHEDULES = ("plateau", "cosine")
#: The task whose classes are the data's own (a CSV's class names, or the label ids present).
DATA_TASK = "data"
TASK_CHOICES = tuple(sorted(TASKS)) + (DATA_TASK,)
#: Default window length in seconds and hop as a share of the window (UCI HAR's windowing).
DEFAULT_WINDOW_S = DEFAULT_SPEC.window / DEFAULT_SPEC.sample_rate_hz
DEFAULT_HOP_FRACTION = DEFAULT_SPEC.hop / DEFAULT_SPEC.window
#: What a config stored before the recipe adapted to the data held for "not given": the fixed
#: defaults then, and what `for_data` and the adaptive recipe still give every 50 Hz source
#: with enough windows (HAPT, UCI).
_PRE_ADAPTIVE_DEFAULTS = {"window": DEFAULT_SPEC.window, "hop": DEFAULT_SPEC.hop,
                          "batch_size": 64}

#: A window or hop: samples (int) or seconds ("2.56s").
Duration = Union[int, str]


@dataclass(frozen=True)
class TrainConfig:
    """Every choice that shapes a trained model; stored in config.json as given.

    None means "adapt to the data": `rate_hz` the data's own rate (50 Hz for the built-in
    sources, the files' rate for CSV), `window`/`hop` 2.56 s with 50 % overlap at that rate
    (`for_data`), `batch_size`/`bn_momentum` from the number of training windows
    (`har_train.recipe`). `test_subjects` None: the data's own test subjects (UCI HAR's, a
    CSV's split column, else seeded picks); `val_subjects` None: the data's (a CSV's split
    column) or `n_val` picks with `split_seed` from the non-test subjects. `task` "har6" on data
    that names its own classes trains on those classes (`DATA_TASK`).
    """

    data: str = "hapt"
    task: str = "har6"
    channels: str = "acc"
    acc_mode: str = "total"
    #: Resample CSV data to this rate (Hz); None: the data's own rate.
    rate_hz: Optional[float] = None
    #: Units a CSV's accelerometer and gyroscope columns are in.
    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    window: Optional[Duration] = None
    hop: Optional[Duration] = None
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
    batch_size: Optional[int] = None
    #: BatchNorm moving-statistics momentum; None: Keras's 0.99 unless epochs are short.
    bn_momentum: Optional[float] = None
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
    test_subjects: Optional[Tuple[int, ...]] = None
    n_val: int = DEFAULT_N_VAL
    split_seed: int = 0
    preset: Optional[str] = None
    #: Deployment tier the run is meant for (har_runtime.contract.tiers); export checks it.
    tier: Optional[str] = None

    def __post_init__(self) -> None:
        choices = (("task", list(TASK_CHOICES)), ("channels", sorted(CHANNEL_SETS)),
                   ("acc_mode", list(ACC_MODES)), ("model", sorted(MODELS)),
                   ("lr_schedule", list(LR_SCHEDULES)), ("acc_unit", sorted(ACC_UNITS)),
                   ("gyro_unit", sorted(GYRO_UNITS)))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        positive = ("epochs", "patience", "learning_rate", "batch_size", "rate_hz")
        for name in positive:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        for name in ("window", "hop"):
            object.__setattr__(self, name, parse_duration(name, getattr(self, name)))
        if self.bn_momentum is not None and not 0.0 <= self.bn_momentum < 1.0:
            raise ConfigError(f"bn_momentum must be in [0, 1), got {self.bn_momentum!r}")
        if not self.context >= 0:
            raise ConfigError(f"context must be >= 0, got {self.context!r}")
        if isinstance(self.hop, int) and self.train_hop is not None \
                and not 1 <= self.train_hop <= self.hop:
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
        for name in ("val_subjects", "test_subjects"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(int(s) for s in getattr(self, name)))
        teachers = (self.teacher,) if isinstance(self.teacher, (str, Path)) else self.teacher
        object.__setattr__(self, "teacher", tuple(str(t) for t in teachers))
        object.__setattr__(self, "model_options", _option_pairs(self.model_options))

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["model_options"] = {k: (list(v) if isinstance(v, tuple) else v)
                                 for k, v in self.model_options}
        for name in ("val_subjects", "test_subjects"):
            if getattr(self, name) is not None:
                data[name] = list(getattr(self, name))
        return data

    def for_data(self, rate_hz: float, named: bool = False) -> "TrainConfig":
        """This config with the rate, window and hop in samples, and the task, that data at
        `rate_hz` gets (`named`: the data names its own classes)."""
        rate = float(self.rate_hz or rate_hz)
        window = _samples(self.window, rate) if self.window is not None \
            else round(DEFAULT_WINDOW_S * rate)
        hop = _samples(self.hop, rate) if self.hop is not None \
            else max(1, round(DEFAULT_HOP_FRACTION * window))
        task = self.task
        if named and task != DATA_TASK:
            if task != "har6":
                raise ConfigError(f"the data names its own classes; task {task!r} needs HAPT "
                                  f"label ids (use --task {DATA_TASK}, or leave --task out)")
            task = DATA_TASK
        return self.replace(rate_hz=rate, window=window, hop=hop, task=task)

    def make_spec(self, classes: Optional[Tuple[Tuple[int, ...], Tuple[str, ...]]] = None
                  ) -> PreprocessSpec:
        """The preprocessing spec these options define (at 50 Hz unless the rate is set);
        `classes` (ids, names) are the data's own, which task "data" needs."""
        config = self.for_data(self.rate_hz or DEFAULT_SPEC.sample_rate_hz)
        if config.task == DATA_TASK and classes is None:
            raise ConfigError(f"task {DATA_TASK!r} takes its classes from the data")
        return make_spec(config.task, config.channels, config.acc_mode, config.window,
                         config.hop, rate_hz=config.rate_hz, context=config.context,
                         classes=classes if config.task == DATA_TASK else None)

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
        values = {k: v for k, v in data.items() if k in known}
        if "rate_hz" not in data:
            values.update({k: None for k, v in _PRE_ADAPTIVE_DEFAULTS.items()
                           if values.get(k) == v})
        try:
            return cls(**values)
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


def parse_duration(name: str, value) -> Optional[Duration]:
    """A window/hop as given, checked: None, samples (int > 0) or seconds ("2.56s", > 0)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    text = str(value).strip().lower()
    try:
        if text.endswith("s") and float(text[:-1]) > 0 and math.isfinite(float(text[:-1])):
            return f"{float(text[:-1]):g}s"
        if int(text) > 0:
            return int(text)
    except ValueError:
        pass
    raise ConfigError(f"{name} must be samples (e.g. 128) or seconds (e.g. 2.56s), > 0, "
                      f"got {value!r}")


def _samples(value: Duration, rate_hz: float) -> int:
    if isinstance(value, int):
        return value
    return max(1, round(float(value[:-1]) * rate_hz))


def choose_test_subjects(config: TrainConfig, subjects: Sequence[int],
                         test: Optional[Sequence[int]] = UCI_TEST_SUBJECTS) -> Tuple[int, ...]:
    """The config's test subjects, else the data's own `test` (None: seeded picks)."""
    present = sorted(set(int(s) for s in subjects))
    if config.test_subjects is None:
        try:
            return pick_test(present, config.split_seed) if test is None else tuple(
                s for s in present if s in set(test))
        except SplitError as exc:
            raise ConfigError(str(exc)) from None
    absent = sorted(set(config.test_subjects) - set(present))
    if absent:
        raise ConfigError(f"test subjects {absent} are not in the data (its subjects: "
                          f"{present})")
    return config.test_subjects


def make_split(config: TrainConfig, subjects: Sequence[int],
               test: Optional[Sequence[int]] = UCI_TEST_SUBJECTS,
               val: Optional[Sequence[int]] = None):
    """The config's subject split. Test: the config's test subjects, else `test` (the data's
    own; None: seeded picks). Validation: the config's, else `val`, else seeded picks."""
    try:
        return default_split(subjects, test=choose_test_subjects(config, subjects, test),
                             val=config.val_subjects if config.val_subjects is not None else val,
                             n_val=config.n_val, seed=config.split_seed)
    except SplitError as exc:
        raise ConfigError(str(exc)) from None
