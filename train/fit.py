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

from har_train.config import TrainConfig, make_split
from har_train.dataset import SplitData, build_split_data, fingerprint, subjects_of
from har_train.errors import ConfigError, DataError
from har_train.models import build_model, count_params
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


def _fit(config: TrainConfig, data: SplitData, spec, out: Path, augment, soft=None):
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


def selection_message(val_loss: List[float], epochs: int, patience: int) -> str:
    """What model selection did, for the log: whether training stopped early, which epoch's
    weights the run keeps (the checkpoint's: lowest validation loss)."""
    ran, best = len(val_loss), best_epoch(val_loss)
    stop = (f"early stopping after epoch {ran}: val_loss did not improve for {patience} epochs"
            if ran < epochs else f"trained all {epochs} epochs")
    if best is None:
        return f"{stop}; no epoch had a finite val_loss, keeping the last epoch's weights"
    return f"{stop}; restored epoch {best} (lowest val_loss, {val_loss[best - 1]:.4f})"


def _load_data(config: TrainConfig, recordings):
    from har_train.data.sources import load_recordings

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
    print(selection_message(history.get("val_loss") or [], config.epochs, config.patience))
    metrics = _summarise(model, config, spec, data, history, time.monotonic() - start)
    write_metrics(out / "metrics.json", metrics)
    plot_confusion(metrics["test"]["confusion_matrix"], spec.labels,
                   out / "confusion_matrix.png",
                   title=f"{config.model} test subjects: accuracy "
                         f"{metrics['test']['accuracy']:.3f}")
    plot_history(history, out / "training_curves.png", name=config.model)
    return TrainResult(out, metrics, history)
