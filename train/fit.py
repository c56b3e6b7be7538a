"""Train one model on a subject split and write its run folder (see docs/CONTRACTS.md).

Backend-neutral Keras 3: nothing here touches TensorFlow, so the same code trains with
KERAS_BACKEND=jax, torch or tensorflow. Keras itself is imported inside the functions that
need it, because importing it fixes the backend and `TrainConfig` must be usable (CLI
defaults, presets) before the entry point has chosen one.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import platform
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from har_runtime.labels import TASKS
from har_runtime.spec import ACC_MODES, CHANNEL_SETS, PreprocessSpec
from har_train.dataset import SplitData, build_split_data, fingerprint, make_spec, subjects_of
from har_train.errors import DataError
from har_train.models import MODELS, build_model, count_params
from har_train.report import evaluate, plot_confusion, plot_history, write_metrics
from har_train.splits import DEFAULT_N_VAL, SplitError, default_split

LR_SCHEDULES = ("plateau", "cosine")
#: Everything `train` writes into a run folder; `--overwrite` removes only these.
RUN_FILES = ("model.keras", "spec.json", "config.json", "versions.json", "fingerprint.txt",
             "metrics.json", "history.csv", "confusion_matrix.png", "training_curves.png",
             "logs", "kfold.json")
#: versions.json key -> distributions that provide it (read from metadata, never imported).
VERSIONED_PACKAGES = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jax",),
                      "jaxlib": ("jaxlib",), "torch": ("torch",), "har-edge": ("har-edge",)}


class ConfigError(ValueError):
    """Training options that cannot work together (message names the option)."""


class RunExistsError(FileExistsError):
    """The output folder already holds files and overwriting was not asked for."""


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
    window: int = 128
    hop: int = 64
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


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced; `metrics` is the content of metrics.json."""

    out_dir: Path
    metrics: Dict[str, Any]
    history: Dict[str, List[float]] = field(repr=False)

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test"]["accuracy"])

    @property
    def val_accuracy(self) -> float:
        return float(self.metrics["val"]["accuracy"])


def check_out_dir(out_dir, overwrite: bool) -> Path:
    """Refuse a run folder that is a file, or non-empty without `overwrite` (creates nothing)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"{out} exists and is not a folder")
    if not overwrite and out.exists() and any(out.iterdir()):
        raise RunExistsError(f"{out} already exists and is not empty; "
                             "pass --overwrite or choose another --out")
    return out


def prepare_out_dir(out_dir, overwrite: bool) -> Path:
    """Create the run folder after `check_out_dir`.

    Overwriting removes only the files a run writes, never anything else in the folder.
    """
    out = check_out_dir(out_dir, overwrite)
    if out.exists():
        for child in out.iterdir():
            if child.name in RUN_FILES or re.fullmatch(r"fold\d+", child.name):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def package_versions() -> Dict[str, str]:
    """Versions of the software that shaped the model, without importing optional backends."""
    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "backend": keras.backend.backend(), "numpy": np.__version__,
                "platform": platform.platform()}
    for key, dists in VERSIONED_PACKAGES.items():
        for dist in dists:
            try:
                versions[key] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def make_split(config: TrainConfig, subjects: Sequence[int]):
    """The config's subject split (UCI test subjects; given or seeded validation subjects)."""
    try:
        return default_split(subjects, val=config.val_subjects, n_val=config.n_val,
                             seed=config.split_seed)
    except SplitError as exc:
        raise ConfigError(str(exc)) from None


def normalization_stats(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of training windows (float64).

    A constant channel gets variance 1: it carries no information, and dividing by a tiny
    standard deviation would only amplify noise from a different device.
    """
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    mean, var = flat.mean(axis=0), flat.var(axis=0)
    return mean, np.where(var > 1e-12, var, 1.0)


def class_sample_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-window weights n / (K * count[class]) so every present class weighs the same."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = int((counts > 0).sum())
    per_class = np.divide(len(y), present * counts, out=np.zeros_like(counts), where=counts > 0)
    return per_class[y]


def _compile(model, config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    lr: Any = config.learning_rate
    if config.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.01)
    if config.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def _callbacks(config: TrainConfig, out: Path) -> list:
    import keras

    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(out / "model.keras"), monitor="val_loss",
                                        save_best_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv")),
    ]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(1, config.patience // 3), min_lr=1e-5))
    # TensorBoard writes through tf.summary; on JAX/torch that would start TensorFlow's runtime
    # beside them (and let it claim GPU memory), so those backends rely on history.csv instead.
    if keras.backend.backend() == "tensorflow" and importlib.util.find_spec("tensorflow"):
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs"),
                                                     write_graph=False))
    else:
        print(f"note: TensorBoard logs skipped on the {keras.backend.backend()} backend; "
              "history.csv has the curves")
    return callbacks


def _augment_config(config: TrainConfig):
    """The run's AugmentConfig (checked before anything is written)."""
    from har_train.augment import NO_AUGMENT, AugmentConfig

    if not config.augment:
        return NO_AUGMENT
    try:
        return AugmentConfig(config.rotation_deg, config.scale_sigma, config.jitter_sigma)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _fit(config: TrainConfig, data: SplitData, spec, out: Path, augment, soft=None):
    """Build, compile and fit (`soft`: distillation targets, see WindowFeeder); returns (best
    model reloaded from disk, history)."""
    import keras

    from har_train.augment import WindowFeeder

    mean, var = normalization_stats(data.train.x)
    model = build_model(config.model, spec, mean, var, input_clip=config.input_clip,
                        **dict(config.model_options))
    weights = (class_sample_weights(data.train.y, spec.num_classes)
               if config.class_weight else None)
    feeder = WindowFeeder(data.train.x, data.train.y, spec.num_classes, config.batch_size,
                          config.seed, spec.model_channels, augment, weights, soft)
    _compile(model, config, len(feeder))
    val_y = np.eye(spec.num_classes, dtype=np.float32)[data.val.y]
    history = model.fit(feeder, validation_data=(data.val.x, val_y), epochs=config.epochs,
                        callbacks=_callbacks(config, out), verbose=2)
    if not (out / "model.keras").exists():
        # The checkpoint only saves on an improving, finite val_loss; keep the last weights.
        model.save(out / "model.keras")
    best = keras.saving.load_model(out / "model.keras", safe_mode=True)
    return best, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def _load_data(config: TrainConfig, recordings):
    from har_train.sources import load_recordings

    if recordings is None:
        recordings = load_recordings(config.data)
    spec = config.make_spec()
    split = make_split(config, subjects_of(recordings))
    data = build_split_data(recordings, spec, split, config.train_hop)
    if len(data.val) == 0:
        raise DataError(f"validation subjects {list(split.val)} have no windows for "
                        f"task {config.task}")
    return recordings, spec, data


def _write_inputs(out: Path, config: TrainConfig, spec, data: SplitData, recordings) -> None:
    record = config.to_dict()
    record["split"] = data.split.to_dict()
    (out / "config.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    (out / "spec.json").write_text(spec.to_json() + "\n")
    (out / "fingerprint.txt").write_text(fingerprint(recordings) + "\n")
    (out / "versions.json").write_text(json.dumps(package_versions(), indent=2) + "\n")


def _summarise(model, config: TrainConfig, spec, data: SplitData, history, seconds: float):
    val_loss = history.get("val_loss") or [float("nan")]
    return {
        "model": config.model, "params": count_params(model), "task": config.task,
        "labels": list(spec.labels), "epochs_run": len(val_loss),
        "best_epoch": int(np.nanargmin(val_loss)) + 1, "best_val_loss": float(np.nanmin(val_loss)),
        "train_seconds": round(seconds, 1),
        "windows": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "train_class_counts": data.train.class_counts(spec.num_classes).tolist(),
        "val": evaluate(model, data.val, spec.labels),
        "test": evaluate(model, data.test, spec.labels),
    }


def train(config: TrainConfig, out_dir, overwrite: bool = False,
          recordings=None) -> TrainResult:
    """Train `config` into `out_dir` (run folder per docs/CONTRACTS.md) and score it.

    Model selection (early stopping, checkpoint, learning-rate drops) looks only at the
    validation subjects; the test subjects are scored once, with the selected weights.
    `recordings` skips reloading the data source (k-fold reuses one load).
    """
    import keras

    augment = _augment_config(config)
    check_out_dir(out_dir, overwrite)
    keras.utils.set_random_seed(config.seed)
    recordings, spec, data = _load_data(config, recordings)
    soft = None
    if config.teacher:  # before the folder is written: a bad teacher leaves nothing behind
        from har_train.distill import soft_targets

        soft = soft_targets(config, spec, data)
    out = prepare_out_dir(out_dir, overwrite)
    _write_inputs(out, config, spec, data, recordings)
    print(f"training {config.model} on {len(data.train)} windows (subjects "
          f"{list(data.split.train)}), validating on {len(data.val)} (subjects "
          f"{list(data.split.val)}), backend {keras.backend.backend()}")
    start = time.monotonic()
    model, history = _fit(config, data, spec, out, augment, soft)
    metrics = _summarise(model, config, spec, data, history, time.monotonic() - start)
    write_metrics(out / "metrics.json", metrics)
    plot_confusion(metrics["test"]["confusion_matrix"], spec.labels,
                   out / "confusion_matrix.png",
                   title=f"{config.model} test subjects: accuracy "
                         f"{metrics['test']['accuracy']:.3f}")
    plot_history(history, out / "training_curves.png")
    return TrainResult(out, metrics, history)
