"""Evaluation metrics (numpy, no sklearn), the metrics file and the run's plots."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

#: Rows per predict call: large enough to be fast, small enough for modest memory.
PREDICT_BATCH = 512


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D and the same length")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0
                        or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes})")
    return np.bincount(y_true * num_classes + y_pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (a class never predicted has precision 0, as sklearn)."""
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def metrics_from_predictions(y_true: np.ndarray, y_pred: np.ndarray,
                             labels: Sequence[str]) -> Dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Macro-F1 averages over the classes that occur in the truth or the predictions, so a class
    absent from an evaluation set neither helps nor hurts it.
    """
    cm = confusion_matrix(y_true, y_pred, len(labels))
    total = int(cm.sum())
    if total == 0:
        raise ValueError("cannot compute metrics on zero windows")
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    per_class = {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                        "f1": float(f1[i]), "support": int(support[i])}
                 for i, name in enumerate(labels)}
    return {"accuracy": float(tp.sum() / total), "macro_f1": float(f1[present].mean()),
            "n": total, "labels": list(labels), "per_class": per_class,
            "confusion_matrix": cm.tolist()}


def predict(model, x: np.ndarray) -> np.ndarray:
    """Class probabilities for windows x (n, window, C)."""
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0))


def evaluate(model, windowset, labels: Sequence[str]) -> Dict[str, Any]:
    """Score a model on a WindowSet; see `metrics_from_predictions` for the keys."""
    probs = predict(model, windowset.x)
    return metrics_from_predictions(windowset.y, probs.argmax(axis=1), labels)


def write_metrics(path, metrics: Mapping[str, Any]) -> Path:
    """Write metrics as pretty, key-sorted JSON."""
    path = Path(path)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return path


def format_table(metrics: Mapping[str, Any]) -> str:
    """Plain-text summary: accuracy, macro-F1 and a per-class precision/recall/F1 table."""
    width = max(len("class"), *(len(n) for n in metrics["labels"]))
    lines = [f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
             f"windows {metrics['n']}",
             f"{'class':<{width}}  precision  recall      f1  support"]
    for name in metrics["labels"]:
        c = metrics["per_class"][name]
        lines.append(f"{name:<{width}}  {c['precision']:9.3f}  {c['recall']:6.3f}  "
                     f"{c['f1']:6.3f}  {c['support']:7d}")
    return "\n".join(lines)


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, or None (with a warning)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed; skipping plots", stacklevel=3)
        return None
    return plt


def plot_confusion(cm, labels: Sequence[str], path, title: str = "") -> Optional[Path]:
    """Row-normalised confusion matrix with counts; returns the path or None if skipped."""
    plt = _pyplot()
    if plt is None:
        return None
    cm = np.asarray(cm, dtype=np.float64)
    rates = _ratio(cm, cm.sum(axis=1, keepdims=True).repeat(cm.shape[1], axis=1))
    size = 2.0 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def best_epoch(val_loss: Sequence[float]) -> Optional[int]:
    """The 1-based epoch with the lowest finite validation loss (the one the checkpoint keeps
    and the run restores), or None when no epoch has one."""
    values = np.asarray(val_loss, dtype=np.float64)
    if not np.isfinite(values).any():
        return None
    return int(np.nanargmin(np.where(np.isfinite(values), values, np.nan))) + 1


def history_figure(plt, history: Mapping[str, List[float]], name: str = ""):
    """The training-curves figure: loss and accuracy per epoch, training vs validation, with a
    vertical mark at the restored (best validation loss) epoch; `name` opens the title."""
    val_loss = history.get("val_loss") or []
    best = best_epoch(val_loss)
    restored = (f"restored epoch {best} (lowest val_loss)" if best is not None
                else "no finite val_loss")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, label=(prefix or "train_") + key)
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":", label=f"restored epoch {best}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{name + ' ' if name else ''}training curves: {len(val_loss)} epochs, "
                 f"{restored}")
    fig.tight_layout()
    return fig


def plot_history(history: Mapping[str, List[float]], path, name: str = "") -> Optional[Path]:
    """Write `history_figure` to `path`; returns the path or None if matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return None
    fig = history_figure(plt, history, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
