"""Regenerate tests/data_golden/: tiny real bundles plus inputs and their expected outputs.

The runtime tests (TF-free venv) load these bundles, check their hashes and compare what they
compute with what is stored here, computed by the same runtime code under TensorFlow's
interpreter at generation time: every variant's probabilities on a few windows (`bundle`,
windows.npz), and a recording streamed through a bundle with a learned context head
(`bundle_context`, stream_context.npz: the samples and the context outputs per window). Needs
the train venv:

    python -m scripts.make_golden_bundle                 # both
    python -m scripts.make_golden_bundle --part context  # bundle_context + stream_context.npz

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
#: Seconds of the recording streamed through the context bundle.
STREAM_SECONDS = 60.0


def pick_windows(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """A few test windows per class, plus one scaled x3 so int8 input clipping is exercised."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y == c), size=WINDOWS_PER_CLASS, replace=False)
             for c in np.unique(y)]
    chosen = x[np.sort(np.concatenate(picks))]
    return np.concatenate([chosen, chosen[:1] * 3.0]).astype(np.float32)


def plain_part(run: Path, out: Path, seed: int) -> int:
    """bundle/ (every variant) and windows.npz; 1 when a variant fails the gate."""
    from har_export.parity import format_table
    from har_export.pipeline import ExportOptions, export_model
    from har_runtime.bundle import load_bundle
    from har_train.dataset import load_run

    result = export_model(run / "model.keras", out / "bundle",
                          ExportOptions(seed=seed, overwrite=True))
    print(format_table(result.report))
    if not result.report.passed:
        print("a variant failed the parity gate; not writing expectations", file=sys.stderr)
        return 1
    test = load_run(run).data.test
    bundle = load_bundle(out / "bundle")
    x = pick_windows(test.x, test.y, seed)
    expected = {f"probs_{name}": bundle.open(name).predict_proba(x) for name in bundle.variants}
    np.savez_compressed(out / "windows.npz", x=x, **expected)
    return 0


def context_part(run: Path, context_dir: Path, out: Path, seed: int) -> None:
    """bundle_context/ (float32 + int8 + a learned head) and stream_context.npz: one test
    recording's first STREAM_SECONDS and the context probabilities its stream emits."""
    from har_export.pipeline import ExportOptions, export_model
    from har_runtime.bundle import load_bundle
    from har_runtime.stream import StreamClassifier
    from har_train.data.sources import load_recordings
    from scripts.tiny_run import DATA, make_tiny_context

    make_tiny_context(run, context_dir, seed=seed)
    export_model(run / "model.keras", out / "bundle_context",
                 ExportOptions(variants=("float32", "int8"), seed=seed, overwrite=True,
                               context_dir=context_dir))
    bundle = load_bundle(out / "bundle_context")
    test = set(bundle.training["split"]["test"])
    rec = next(r for r in load_recordings(DATA) if r.subject in test)
    keep = rec.times < rec.times[0] + STREAM_SECONDS
    t, x = rec.times[keep], rec.frames(bundle.spec.channels)[keep]
    expected = {}
    for name in bundle.variants:
        stream = StreamClassifier(bundle.spec, bundle.open(name), bundle.smoothing)
        expected[f"context_{name}"] = np.asarray(
            [[p.probabilities[label] for label in bundle.labels]
             for p in stream.classify_recording(t, x)], np.float32)
    np.savez_compressed(out / "stream_context.npz", t=t, x=x.astype(np.float32), **expected)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN, help="golden data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--part", choices=["all", "plain", "context"], default="all")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scripts.tiny_run import make_tiny_run

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="har-golden-") as tmp:
        run = make_tiny_run(Path(tmp) / "run", epochs=args.epochs, seed=args.seed)
        if args.part in ("all", "plain") and plain_part(run, args.out, args.seed):
            return 1
        if args.part in ("all", "context"):
            context_part(run, Path(tmp) / "context", args.out, args.seed)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"golden data in {args.out}: {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
