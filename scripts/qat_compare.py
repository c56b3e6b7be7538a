"""Post-training vs quantisation-aware int8 on the validation subjects of run folders.

    python -m scripts.qat_compare /tmp/runs/ptq-s0 /tmp/runs/qat-s0 [...]

For each run folder: the int8 model converted as har-export does (same calibration draw,
standardisation cut; a `--qat` run's FakeQuant ranges are taken by the converter), then on the
validation windows the Keras accuracy, the int8 accuracy and their top-1 agreement, plus the
agreement on validation and unused training windows (scripts.int8_agreement). Test subjects are
never scored. One JSON line per run folder.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from har_export.convert import DEFAULT_CALIBRATION_SIZE, keras_probabilities, load_keras_model
from har_export.pipeline import build_variants, calibration_windows
from har_runtime.interpreter import TFLiteClassifier
from har_train.dataset import load_run
from scripts.int8_agreement import agreement


def compare(run_dir: Path, calibration_size: int = DEFAULT_CALIBRATION_SIZE) -> dict:
    """Validation Keras / int8 accuracy and agreement of one run folder (fractions)."""
    run = load_run(run_dir)
    model = load_keras_model(run_dir / "model.keras")
    val = run.data.val
    keras_pred = keras_probabilities(model, val.x).argmax(1)
    calibration, _ = calibration_windows(run, calibration_size, 0)
    blobs, norm, _ = build_variants(model, ["int8"], calibration)
    int8_pred = TFLiteClassifier(blobs["int8"], input_norm=norm).predict(val.x)
    wider = agreement(run_dir, [None], calibration_size)["settings"][0]
    return {"run": str(run_dir), "qat": bool(run.config.get("qat")),
            "seed": run.config.get("seed"), "val_windows": int(len(val.y)),
            "keras_val_acc": float(np.mean(keras_pred == val.y)),
            "int8_val_acc": float(np.mean(int8_pred == val.y)),
            "val_agreement": float(np.mean(int8_pred == keras_pred)),
            "val_and_unused_train_agreement": wider["all"], "int8_bytes": len(blobs["int8"])}


@click.command(help=__doc__.split("\n\n")[0])
@click.argument("runs", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
def main(runs) -> None:
    for run_dir in runs:
        click.echo(json.dumps(compare(run_dir)))


if __name__ == "__main__":
    main()
