"""The learned context head into the bundle: convert, gate, describe (`har-export --context`).

`har-train context` leaves a folder with context.keras (the head as one step, state in and
out) and context.json. Here the step model becomes a float32 TFLite file and faces its own
parity gate before it may ship: the run's test windows, in order, go through the Keras base
model and then step by step through the Keras head and through the TFLite head as the
runtime runs it (`RecurrentHead`); every window's context prediction must agree and every
probability stay within `CONTEXT_GATE.max_abs_diff`. A head that fails is not written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from har_export.convert import convert_variants, load_keras_model
from har_export.errors import ExportError, InputError
from har_export.parity import VariantGate
from har_runtime.recurrent_context import (LOG_FLOOR, RecurrentContext, RecurrentContextError,
                                           RecurrentHead)
from har_train.context_head import run_step_model

CONTEXT_FILE = "context.tflite"
#: The float32 variant's gate, for the float32 head.
CONTEXT_GATE = VariantGate(min_agreement=1.0, max_abs_diff=1e-4)


class ContextParityError(ExportError):
    """The converted head departs from the Keras head (exit code PARITY_FAILED)."""


@dataclass(frozen=True)
class ExportedContext:
    """A gated head, ready for `write_bundle`: its settings and its file's bytes."""

    settings: RecurrentContext
    content: bytes


def load_head(context_dir, labels: Tuple[str, ...]) -> Tuple[Any, Dict[str, Any]]:
    """The step model and context.json of a `har-train context` folder, checked against the
    run's labels; InputError for anything missing, foreign or malformed."""
    folder = Path(context_dir)
    try:
        summary = json.loads((folder / "context.json").read_text())
        state_size, head_labels = int(summary["state_size"]), tuple(summary["labels"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{folder} is not a context folder (har-train context): context.json "
                         "is missing or unreadable") from None
    if head_labels != tuple(labels):
        raise InputError(f"{folder}: the head was trained for labels {list(head_labels)}, "
                         f"the run has {list(labels)}")
    model = load_keras_model(folder / "context.keras")
    k, h = len(labels), state_size
    shapes = ([tuple(t.shape[1:]) for t in model.inputs], [tuple(t.shape[1:])
                                                           for t in model.outputs])
    if shapes != ([(k,), (h,)], [(k,), (h,)]):
        raise InputError(f"{folder}/context.keras maps {shapes[0]} -> {shapes[1]}; a head for "
                         f"{k} labels and state {h} maps [({k},), ({h},)] -> the same")
    return model, summary


def gate_head(model: Any, content: bytes, settings: RecurrentContext,
              base_probs: np.ndarray) -> Dict[str, Any]:
    """Compare the Keras and the TFLite head on one sequence of base-model probabilities;
    the record written to bundle.json (`context.parity`), ContextParityError on failure."""
    try:
        tflite = RecurrentHead(settings, content, None).run(base_probs)
    except RecurrentContextError as exc:
        raise ContextParityError(f"the converted head cannot run: {exc}") from None
    reference = run_step_model(model, base_probs, settings.floor)
    agreement = float(np.mean(tflite.argmax(axis=1) == reference.argmax(axis=1)))
    diff = float(np.max(np.abs(tflite - reference))) if len(reference) else 0.0
    record = {"windows": int(len(reference)), "agreement": agreement, "max_abs_diff": diff,
              "min_agreement": CONTEXT_GATE.min_agreement,
              "max_abs_diff_limit": CONTEXT_GATE.max_abs_diff, "source": "test subjects"}
    if agreement < CONTEXT_GATE.min_agreement or diff > CONTEXT_GATE.max_abs_diff:
        raise ContextParityError(
            f"context head failed its parity gate: agreement {agreement:.4%} (needs "
            f"{CONTEXT_GATE.min_agreement:.2%}), max |dp| {diff:.2e} (limit "
            f"{CONTEXT_GATE.max_abs_diff:g})")
    return record


def export_context(context_dir, labels: Tuple[str, ...], base_probs: np.ndarray,
                   verbose: bool = False, progress: Optional[Any] = None) -> ExportedContext:
    """Convert and gate a `har-train context` folder's head for a bundle of `labels`;
    `base_probs` are the Keras base model's outputs on the run's test windows, in order."""
    model, summary = load_head(context_dir, labels)
    if progress:
        progress(f"converting the context head of {context_dir} (float32)")
    content = convert_variants(model, ["float32"], np.empty((0,), np.float32),
                               verbose=verbose)["float32"]
    settings = RecurrentContext(tuple(labels), CONTEXT_FILE, int(summary["state_size"]),
                                float(summary.get("floor", LOG_FLOOR)))
    parity = gate_head(model, content, settings, base_probs)
    training = {key: summary.get(key) for key in ("run_dir", "kfold_dir", "config",
                                                  "best_epoch", "val_scores")}
    return ExportedContext(RecurrentContext(settings.labels, settings.file, settings.state_size,
                                            settings.floor, parity, training), content)
