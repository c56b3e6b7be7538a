"""int8/Keras agreement of run folders without touching the test subjects: for export choices.

    python -m scripts.int8_agreement runs/leaderboard/hapt12-acc_gyro/s*/run \
        --input-range-percentile 0 --input-range-percentile 99.9 [--seed 0 --seed 1 ...]

For each run folder: the int8 model is converted as har-export does (same calibration windows,
standardisation cut, input clip), once per `--input-range-percentile` (0: one input range) and
calibration draw `--seed`, and its top-1 agreement with the Keras model is measured on the
validation windows plus every training window that no compared draw uses for calibration (so
all settings are scored on the same windows). The test subjects are never loaded into the
score, so the figures may drive export choices (the parity gate itself stays on the test
subjects). Prints one JSON line per run folder.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence

import click
import numpy as np

from har_export.convert import (DEFAULT_CALIBRATION_SIZE, keras_probabilities, load_keras_model,
                                representative_indices)
from har_export.pipeline import build_variants, calibration_windows
from har_runtime.interpreter import TFLiteClassifier
from har_train.dataset import load_run


def probe_windows(run, calibration_size: int, seeds: Sequence[int]) -> np.ndarray:
    """Validation windows, then the training windows none of the `seeds`' draws uses."""
    train = run.data.train
    used = [representative_indices(train.y, calibration_size, seed) for seed in seeds]
    unused = np.setdiff1d(np.arange(len(train.y)), np.concatenate(used))
    return np.concatenate([run.data.val.x, train.x[unused]]).astype(np.float32)


def agreement(run_dir: Path, percentiles: Sequence[Optional[float]],
              calibration_size: int = DEFAULT_CALIBRATION_SIZE,
              seeds: Sequence[int] = (0,)) -> Dict:
    """{"windows": n, "validation": n_val, "settings": [{"percentile", "seed", "all",
    "validation", "training", "scales"}, ...]}, agreements as fractions of those windows."""
    run = load_run(run_dir)
    windows = probe_windows(run, calibration_size, seeds)
    model = load_keras_model(run_dir / "model.keras")
    reference = keras_probabilities(model, windows).argmax(1)
    n_val = len(run.data.val.y)
    settings = []
    for seed in seeds:
        calibration, _ = calibration_windows(run, calibration_size, seed)
        for percentile in percentiles:
            blobs, norm, ranges = build_variants(model, ["int8"], calibration, percentile)
            same = TFLiteClassifier(blobs["int8"], input_norm=norm).predict(windows) == reference
            settings.append({"percentile": percentile or 0, "seed": seed,
                             "all": float(same.mean()),
                             "validation": float(same[:n_val].mean()),
                             "training": float(same[n_val:].mean()),
                             "scales": list(ranges.scales)})
    return {"run": str(run_dir), "windows": len(windows), "validation": n_val,
            "settings": settings}


@click.command(help=__doc__.split("\n\n")[0])
@click.argument("runs", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--input-range-percentile", "percentiles", multiple=True,
              type=click.FloatRange(0, 100), default=(0.0,), show_default=True,
              help="Export setting to compare (repeatable); 0: one input range.")
@click.option("--calibration-size", type=click.IntRange(min=1),
              default=DEFAULT_CALIBRATION_SIZE, show_default=True)
@click.option("--seed", "seeds", multiple=True, type=int, default=(0,), show_default=True,
              help="Calibration draw to compare, as har-export's --seed (repeatable).")
def main(runs, percentiles, calibration_size, seeds) -> None:
    chosen = [p or None for p in percentiles]
    for run_dir in runs:
        click.echo(json.dumps(agreement(run_dir, chosen, calibration_size, seeds)))


if __name__ == "__main__":
    main()
