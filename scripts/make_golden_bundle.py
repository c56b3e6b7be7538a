"""Regenerate tests/data_golden/: a tiny real bundle plus windows and their expected outputs.

The runtime tests (TF-free venv) load this bundle, check its hashes and compare every variant's
predictions with the probabilities stored here, which were computed by the same
`TFLiteClassifier` under TensorFlow's interpreter at generation time. Needs the train venv:

    python -m scripts.make_golden_bundle     # writes tests/data_golden/{bundle,windows.npz}

The run folder is built in a temporary directory (scripts/tiny_run.py, which the export tests
use too: about 1.6 k parameters trained on `synthetic:0`), so the bundle's training.run_dir
names a folder that no longer exists; nothing reads it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from scripts import REPO

GOLDEN = REPO / "tests" / "data_golden"
WINDOWS_PER_CLASS = 2


def pick_windows(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """A few test windows per class, plus one scaled x3 so int8 input clipping is exercised."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == c), size=WINDOWS_PER_CLASS, replace=False)
             for c in np.unique(y)]
    chosen = x[np.sort(np.concatenate(picks))]
    return np.concatenate([chosen, chosen[:1] * 3.0]).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN, help="golden data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from har_export.parity import format_table
    from har_export.pipeline import ExportOptions, export_model
    from har_runtime.bundle import load_bundle
    from har_train.dataset import load_run
    from scripts.tiny_run import make_tiny_run

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="har-golden-") as tmp:
        run = make_tiny_run(Path(tmp) / "run", epochs=args.epochs, seed=args.seed)
        result = export_model(run / "model.keras", args.out / "bundle",
                              ExportOptions(seed=args.seed, overwrite=True))
        test = load_run(run).data.test
    print(format_table(result.report))
    if not result.report.passed:
        print("a variant failed the parity gate; not writing expectations", file=sys.stderr)
        return 1
    bundle = load_bundle(args.out / "bundle")
    x = pick_windows(test.x, test.y, args.seed)
    expected = {f"probs_{name}": bundle.open(name).predict_proba(x) for name in bundle.variants}
    np.savez_compressed(args.out / "windows.npz", x=x, **expected)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"golden data in {args.out}: {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
