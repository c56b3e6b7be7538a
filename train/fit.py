"""Train one model on a subject split and write its run folder (see docs/CONTRACTS.md).

Backend-neutral Keras 3: nothing here touches TensorFlow, so the same code trains with
KERAS_BACKEND=jax, torch or tensorflow. Keras itself is imported inside the functions that
need it, because importing it fixes the backend, which the entry point chooses. The options
are `har_train.config.TrainConfig`; the run folder's bookkeeping is `har_train.rundir`.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from har_train.config import DATA_TASK, TrainConfig, make_split
from har_train.dataset import (SplitData, build_split_data, check_lengths, data_classes,
                               fingerprint, subjects_of)
from har_train.errors import ConfigError, DataError
from har_train.models import build_model, count_params
from har_train.recipe import DEFAULT_BN_MOMENTUM, Recipe, choose_recipe, guard
from har_train.report import best_epoch, evaluate, plot_confusion, plot_history, write_metrics
from har_train.rundir import check_out_dir, package_versions, prepare_out_dir


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


def _set_bn_momentum(model, momentum: float) -> None:
    """Give every BatchNormalization layer `momentum` (the builders use Keras's 0.99, which
    the recipe keeps unless epochs are short; the layers read it on every training call)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def _fit(config: TrainConfig, data: SplitData, spec, out: Path, augment, recipe: Recipe,
         soft=None):
    """Build, compile and fit (`soft`: distillation targets, see WindowFeeder); returns (best
    model reloaded from disk, history)."""
    import keras

    from har_train.augment import WindowFeeder

    mean, var = normalization_stats(data.train.x)
    model = build_model(config.model, spec, mean, var, input_clip=config.input_clip,
                        **dict(config.model_options))
    if config.qat:
        from har_train.qat import quantize_activations
        from har_train.run_model import load_run_model

        if config.qat_from:  # fine-tune a trained model; its standardisation comes along
            model = load_run_model(Path(config.qat_from), spec, "--qat-from run")
        model = quantize_activations(model, keep_weights=bool(config.qat_from))
    if recipe.bn_momentum != DEFAULT_BN_MOMENTUM:
        _set_bn_momentum(model, recipe.bn_momentum)
    weights = (class_sample_weights(data.train.y, spec.num_classes)
               if config.class_weight else None)
    feeder = WindowFeeder(data.train.x, data.train.y, spec.num_classes, recipe.batch_size,
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


def selection_message(val_loss: List[float], epochs: int, patience: int) -> str:
    """What model selection did, for the log: whether training stopped early, which epoch's
    weights the run keeps (the checkpoint's: lowest validation loss)."""
    ran, best = len(val_loss), best_epoch(val_loss)
    stop = (f"early stopping after epoch {ran}: val_loss did not improve for {patience} epochs"
            if ran < epochs else f"trained all {epochs} epochs")
    if best is None:
        return f"{stop}; no epoch had a finite val_loss, keeping the last epoch's weights"
    return f"{stop}; restored epoch {best} (lowest val_loss, {val_loss[best - 1]:.4f})"


def data_spec(config: TrainConfig, source) -> Tuple[TrainConfig, Any]:
    """The config as a loaded `SourceData` resolves it (rate, window and hop in samples,
    task) and its spec."""
    resolved = config.for_data(source.rate_hz, source.named)
    if resolved.train_hop is not None and resolved.train_hop > resolved.hop:
        raise ConfigError(f"train_hop must be between 1 and hop ({resolved.hop}), "
                          f"got {resolved.train_hop!r}")
    classes = (data_classes(source.recordings, source.label_names)
               if resolved.task == DATA_TASK else None)
    spec = resolved.make_spec(classes)
    if any(abs(r.rate_hz - spec.sample_rate_hz) > 1e-9 for r in source.recordings):
        raise DataError(f"{config.data!r} is recorded at {source.rate_hz:g} Hz, not "
                        f"{spec.sample_rate_hz:g} Hz; --rate applies to csv: data only")
    return resolved, spec


def load_data(config: TrainConfig, source=None):
    """The source's recordings, the config as the data resolves it (rate, window, hop in
    samples, task), its spec and its split's windows. `source` is a loaded `SourceData`, a
    list of recordings of a built-in source, or None to load `config.data`."""
    from har_train.data.sources import SourceData, load_source

    if source is None:
        source = load_source(config.data, config.rate_hz, config.acc_unit, config.gyro_unit)
    elif not isinstance(source, SourceData):
        source = SourceData.of(source)
    resolved, spec = data_spec(config, source)
    check_lengths(source.recordings, spec)
    split = make_split(config, subjects_of(source.recordings), source.test, source.val)
    data = build_split_data(source.recordings, spec, split, config.train_hop)
    if len(data.val) == 0:
        raise DataError(f"validation subjects {list(split.val)} have no windows for "
                        f"the classes {list(spec.labels)} (give others with --val-subjects)")
    return source, resolved, spec, data


def _write_inputs(out: Path, config: TrainConfig, spec, data: SplitData, recordings,
                  recipe: Dict[str, Any]) -> None:
    record = config.to_dict()
    record["split"] = data.split.to_dict()
    record["recipe"] = recipe
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
        "test_subjects": list(data.split.test),
        "train_class_counts": data.train.class_counts(spec.num_classes).tolist(),
        "val": evaluate(model, data.val, spec.labels),
        "test": evaluate(model, data.test, spec.labels),
    }


def _resolved(config: TrainConfig, resolved: TrainConfig, source, recipe: Recipe):
    """What the data decided, for config.json and metrics.json ("recipe")."""
    record = recipe.to_dict()
    record.update(rate_hz=resolved.rate_hz, window=resolved.window, hop=resolved.hop,
                  task=resolved.task, test_subjects_from=(
                      "--test-subjects" if config.test_subjects is not None
                      else source.split_from))
    return record


def _report_guard(model, spec, data: SplitData, history, recipe: Recipe,
                  metrics: Dict[str, Any]) -> None:
    """Score the selected model on its training windows in inference mode and warn (printed
    and in metrics.json "warnings") when that contradicts training-mode accuracy."""
    best = metrics["best_epoch"] - 1
    train_mode = history.get("accuracy") or [float("nan")]
    train_mode_acc = float(train_mode[min(best, len(train_mode) - 1)])
    train_acc = evaluate(model, data.train, spec.labels)["accuracy"]
    metrics["train_accuracy"] = {"inference": train_acc, "training_mode": train_mode_acc}
    present = int((data.train.class_counts(spec.num_classes) > 0).sum())
    metrics["warnings"] = guard(train_mode_acc, train_acc, metrics["val"]["accuracy"], present,
                                recipe)
    for line in metrics["warnings"]:
        print(line)


def _announce(config: TrainConfig, spec, data: SplitData, test_from: str, backend: str) -> None:
    split = data.split
    print(f"training {config.model} on {len(data.train)} windows (subjects {list(split.train)}),"
          f" validating on {len(data.val)} (subjects {list(split.val)}), testing on "
          f"{len(data.test)} (subjects {list(split.test)}: {test_from}), "
          f"{spec.sample_rate_hz:g} Hz, window {spec.window} hop {spec.hop}, "
          f"classes {list(spec.labels)}, backend {backend}")


def train(config: TrainConfig, out_dir, overwrite: bool = False,
          recordings=None) -> TrainResult:
    """Train `config` into `out_dir` (run folder per docs/CONTRACTS.md) and score it.

    Model selection (early stopping, checkpoint, learning-rate drops) looks only at the
    validation subjects; the test subjects are scored once, with the selected weights.
    `recordings` (a `SourceData` or a list of recordings) skips reloading the data source
    (k-fold reuses one load). Batch size and BatchNorm momentum adapt to the number of
    training windows unless the config sets them (`har_train.recipe`).
    """
    import keras

    augment = _augment_config(config)
    check_out_dir(out_dir, overwrite)
    keras.utils.set_random_seed(config.seed)
    source, resolved, spec, data = load_data(config, recordings)
    recipe = choose_recipe(len(data.train), config.batch_size, config.bn_momentum)
    soft = None
    if config.teacher:  # before the folder is written: a bad teacher leaves nothing behind
        from har_train.distill import soft_targets

        soft = soft_targets(resolved, spec, data)
    out = prepare_out_dir(out_dir, overwrite)
    record = _resolved(config, resolved, source, recipe)
    _write_inputs(out, config, spec, data, source.recordings, record)
    _announce(config, spec, data, record["test_subjects_from"], keras.backend.backend())
    print(recipe.describe())
    start = time.monotonic()
    model, history = _fit(resolved, data, spec, out, augment, recipe, soft)
    print(selection_message(history.get("val_loss") or [], resolved.epochs, resolved.patience))
    metrics = _summarise(model, resolved, spec, data, history, time.monotonic() - start)
    metrics["recipe"] = record
    _report_guard(model, spec, data, history, recipe, metrics)
    write_metrics(out / "metrics.json", metrics)
    plot_confusion(metrics["test"]["confusion_matrix"], spec.labels,
                   out / "confusion_matrix.png",
                   title=f"{config.model} test subjects: accuracy "
                         f"{metrics['test']['accuracy']:.3f}")
    plot_history(history, out / "training_curves.png", name=config.model)
    return TrainResult(out, metrics, history)
