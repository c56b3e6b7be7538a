"""Loading the model of another run folder (a distillation teacher, an ensemble member).

Such a folder is input like any other: loaded in Keras safe mode (no code from the file runs),
and checked to map the spec's window to its classes, with one-line errors that name its role.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from har_runtime.contract.spec import PreprocessSpec
from har_train.errors import ConfigError


def load_run_model(run_dir: Path, spec: PreprocessSpec, role: str) -> Any:
    """RUN_DIR/model.keras as a Keras model mapping (None, window, C) -> (None, classes)."""
    import keras

    import har_train.qat  # noqa: F401  registers the QAT layer for loading

    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise ConfigError(f"{role} {run_dir} has no model.keras")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # a corrupt or hostile file: report it, never run its code
        raise ConfigError(f"{role} {path} cannot be loaded "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    expected = (tuple(spec.input_shape), (spec.num_classes,))
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"{role} {path} must have one input and one output")
    got = (tuple(model.inputs[0].shape[1:]), tuple(model.outputs[0].shape[1:]))
    if got != expected:
        raise ConfigError(f"{role} {path} maps {got[0]} -> {got[1]}; this run needs "
                          f"{expected[0]} -> {expected[1]}")
    return model
